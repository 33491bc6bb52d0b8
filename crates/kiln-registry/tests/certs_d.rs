//! TLS to a registry with a private CA through Docker's `certs.d/HOST:PORT/` (`ca.crt`,
//! `client.cert`, `client.key`), against Debian's `docker-registry` with client
//! certificates required.

use kiln_oci::{ImportOptions, Reference, Store};
use kiln_registry::{NoProgress, PullOptions, PushOptions, Registries, RegistryOptions};
use kiln_test_support::{Registry, RegistrySetup};

fn registries(certs_d: Option<std::path::PathBuf>) -> Registries {
    let mut opts = RegistryOptions {
        certs_d,
        ..RegistryOptions::default()
    };
    opts.http.retry.attempts = 1;
    Registries::new(opts).unwrap()
}

#[test]
fn certs_d_gives_the_ca_and_the_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let Some(reg) = Registry::start(
        &dir.path().join("reg"),
        &RegistrySetup {
            tls: true,
            mtls: true,
            ..RegistrySetup::default()
        },
    ) else {
        return;
    };
    let ca = reg.ca.clone().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let tar = std::process::Command::new("tar")
        .args(["-cf", "-", "-C", "/etc", "hostname"])
        .output()
        .unwrap()
        .stdout;
    let r = Reference::parse(&format!("{}/certs/d:1", reg.addr)).unwrap();
    let d = kiln_oci::import_rootfs(&store, tar.as_slice(), Some(&r), &ImportOptions::default())
        .unwrap();
    let image = kiln_oci::Image::read(&store, &d, vec![r.clone()]).unwrap();

    // Without certs.d: the certificate is not trusted.
    let e = registries(None)
        .push(&store, &image, &r, &PushOptions::default(), &NoProgress)
        .unwrap_err();
    assert!(e.to_string().contains(&reg.addr), "{e}");

    let certs_d = dir.path().join("certs.d");
    let host = certs_d.join(&reg.addr);
    std::fs::create_dir_all(&host).unwrap();
    std::fs::copy(&ca.ca, host.join("ca.crt")).unwrap();
    // The CA alone: the registry wants a client certificate.
    assert!(
        registries(Some(certs_d.clone()))
            .push(&store, &image, &r, &PushOptions::default(), &NoProgress)
            .is_err()
    );
    std::fs::copy(&ca.client_cert, host.join("client.cert")).unwrap();
    std::fs::copy(&ca.client_key, host.join("client.key")).unwrap();
    let regs = registries(Some(certs_d));
    let pushed = regs
        .push(&store, &image, &r, &PushOptions::default(), &NoProgress)
        .unwrap();
    let other = Store::open(&dir.path().join("other")).unwrap();
    let pulled = regs
        .pull(&other, &r, &PullOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!(pulled.digest, pushed.digest);
    assert_eq!(regs.resolve_digest(&r).unwrap(), pushed.digest);
}

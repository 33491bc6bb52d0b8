//! Bearer-token auth against a real token flow: a fake registry that answers 401 with
//! `WWW-Authenticate: Bearer realm=...,service=...,scope=...` and accepts only tokens whose
//! scopes cover the request, and a token server (a thread of the test) that checks Basic
//! credentials from Docker's `config.json` and grants tokens per scope. It shows the scopes
//! asked for a pull, a push and a mount source, one token request per set of scopes however
//! many requests use it, and that neither the token nor the password appears in an error.

mod common;

use common::{Layer, Tokens, fake, put_image};
use kiln_oci::{Reference, Store};
use kiln_registry::{NoProgress, PullOptions, PushOptions, Registries, RegistryOptions};

const PASSWORD: &str = "s3cr3t-PASSWORD";

fn registries(docker_config: &std::path::Path, host: &str, password: &str) -> Registries {
    let auth = base64_of(&format!("alice:{password}"));
    std::fs::write(
        docker_config.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let mut opts = RegistryOptions {
        certs_d: None,
        docker_config_dir: Some(docker_config.to_owned()),
        ..RegistryOptions::default()
    };
    opts.http.retry.sleep = |_| {};
    Registries::new(opts).unwrap()
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn tokens_are_asked_per_scope_once_and_never_shown() {
    let (addr, state) = fake(Some(Tokens {
        basic: format!("alice:{PASSWORD}"),
        locked: ["x/locked".to_owned()].into(),
        ..Tokens::default()
    }));
    {
        let mut st = state.lock().unwrap();
        let layers = [Layer::gz("a", 40_000), Layer::gz("b", 50_000)];
        put_image(&mut st, "x/src", "1", &layers, |_| true);
        put_image(&mut st, "x/src", "2", &layers, |_| true);
        put_image(&mut st, "x/locked", "1", &layers, |_| true);
    }
    let conf = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reg = registries(conf.path(), &addr, PASSWORD);
    let requests = || {
        state
            .lock()
            .unwrap()
            .tokens
            .as_ref()
            .unwrap()
            .requests
            .clone()
    };

    // A pull: manifest, config and two layers on one token, asked with the pull scope.
    let src = Reference::parse(&format!("{addr}/x/src:1")).unwrap();
    let pulled = reg
        .pull(&store, &src, &PullOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!(pulled.fetched, 3);
    assert_eq!(requests(), ["repository:x/src:pull"]);
    // Another tag of the same repository: the token is reused.
    let src2 = Reference::parse(&format!("{addr}/x/src:2")).unwrap();
    reg.pull(&store, &src2, &PullOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!(requests(), ["repository:x/src:pull"]);

    // A push to another repository: pull and push on it, pull on the mount source (the store
    // knows where the blobs came from), one token for all of it; the blobs are mounted.
    let image = store.resolve(&src.to_string()).unwrap();
    let dst = Reference::parse(&format!("{addr}/x/dst:1")).unwrap();
    let pushed = reg
        .push(&store, &image, &dst, &PushOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!(
        requests(),
        [
            "repository:x/src:pull",
            "repository:x/dst:pull,push repository:x/src:pull"
        ]
    );
    assert_eq!((pushed.mounted, pushed.uploaded), (3, 0), "{pushed:?}");
    let log = state.lock().unwrap().log.clone();
    assert!(
        log.iter()
            .any(|l| l.starts_with("POST /v2/x/dst/blobs/uploads/?mount=")
                && l.contains("from=x/src")),
        "{log:#?}"
    );
    // The same push again: the cached token, nothing new asked.
    reg.push(&store, &image, &dst, &PushOptions::default(), &NoProgress)
        .unwrap();
    assert_eq!(requests().len(), 2, "{:?}", requests());

    // A registry that refuses the token: a clear 401 naming the repository, without it.
    let locked = Reference::parse(&format!("{addr}/x/locked:1")).unwrap();
    let e = reg
        .pull(&store, &locked, &PullOptions::default(), &NoProgress)
        .unwrap_err();
    let shown = format!("{e} {e:?} {:?}", std::error::Error::source(&e));
    assert!(
        shown.contains("401") && shown.contains("x/locked"),
        "{shown}"
    );
    assert!(requests().last().unwrap() == "repository:x/locked:pull");
    for secret in [
        "SECRET-TOKEN",
        PASSWORD,
        &base64_of(&format!("alice:{PASSWORD}")),
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }

    // Wrong credentials: the token server's 401, without the password either.
    let conf2 = tempfile::tempdir().unwrap();
    let wrong = registries(conf2.path(), &addr, "wrong-PASSWORD");
    let e = wrong
        .pull(&store, &src, &PullOptions::default(), &NoProgress)
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("401") && shown.contains("token"), "{shown}");
    assert!(
        !shown.contains("wrong-PASSWORD") && !shown.contains("SECRET-TOKEN"),
        "{shown}"
    );
}

//! Docker credential helpers: a fake `docker-credential-kilntest` (a shell script on `PATH`,
//! keeping what it is given in files of the test) speaking Docker's protocol (`get` and
//! `erase` read the server URL on stdin, `store` reads `{"ServerURL","Username","Secret"}`
//! JSON, `get` prints it; "credentials not found" when it has none). Against Debian's
//! `docker-registry` with basic auth, it shows that `credsStore` is the default helper of
//! `kiln login` / `kiln logout` and of pushes and pulls, and that `credHelpers` names the
//! helper of one registry, before `credsStore`.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use kiln_test_support::{KilnEnv, Registry, RegistrySetup, ok, text};

const HELPER: &str = r#"#!/bin/sh
# A fake Docker credential helper: credentials in $KILNTEST_STORE/<server>.json.
dir="${KILNTEST_STORE:?}"
file() { printf '%s/%s.json' "$dir" "$(printf %s "$1" | tr '/:' '__')"; }
case "$1" in
get)
    server=$(cat)
    echo "get $server" >> "$dir/calls"
    if [ -f "$(file "$server")" ]; then cat "$(file "$server")"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
    json=$(cat)
    server=$(printf %s "$json" | sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p')
    echo "store $server" >> "$dir/calls"
    printf %s "$json" > "$(file "$server")" ;;
erase)
    server=$(cat)
    echo "erase $server" >> "$dir/calls"
    if [ -f "$(file "$server")" ]; then rm "$(file "$server")"; else echo "credentials not found in native keychain"; exit 1; fi ;;
*) echo "unknown action $1"; exit 1 ;;
esac
"#;

const PASSWORD: &str = "helper-PASS-2718";

fn calls(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn creds_store_and_cred_helpers_serve_login_logout_push_and_pull() {
    let Some(env) = KilnEnv::new(
        Path::new(env!("CARGO_BIN_EXE_kiln")),
        &["docker-registry", "htpasswd", "sh", "sed", "tr"],
    ) else {
        return;
    };
    let reg = Registry::start(
        &env.dir.join("reg"),
        &RegistrySetup {
            basic_auth: Some(("kiln".into(), PASSWORD.into())),
            ..RegistrySetup::default()
        },
    )
    .expect("checked above");
    let bin = env.dir.join("bin");
    let keep = env.dir.join("helper-store");
    fs::create_dir_all(&bin).unwrap();
    fs::create_dir_all(&keep).unwrap();
    let helper = bin.join("docker-credential-kilntest");
    fs::write(&helper, HELPER).unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    #[allow(clippy::disallowed_methods)] // the test's own PATH, with the helper first
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    // `credsStore`: the default helper.
    let docker = env.dir.join("docker-default");
    fs::create_dir_all(&docker).unwrap();
    fs::write(docker.join("config.json"), r#"{"credsStore":"kilntest"}"#).unwrap();
    let vars = [
        ("DOCKER_CONFIG", docker.to_str().unwrap()),
        ("PATH", path.as_str()),
        ("KILNTEST_STORE", keep.to_str().unwrap()),
    ];
    let addr = reg.addr.as_str();
    ok(&env.kiln_with(
        &["login", "-u", "kiln", "--password-stdin", addr],
        &vars,
        Some(format!("{PASSWORD}\n").as_bytes()),
    ));
    assert!(
        calls(&keep).contains(&format!("store {addr}")),
        "{:?}",
        calls(&keep)
    );
    let config = fs::read_to_string(docker.join("config.json")).unwrap();
    assert!(
        !config.contains("auths") && !config.contains(PASSWORD),
        "{config}"
    );
    let target = format!("{addr}/p/busybox:1");
    let digest = ok(&env.kiln_with(&["push", "busybox:latest", &target], &vars, None))
        .trim()
        .to_owned();
    assert!(
        calls(&keep).contains(&format!("get {addr}")),
        "{:?}",
        calls(&keep)
    );
    let fresh = env.dir.join("store2");
    // Pulls into a fresh store each time, so that the registry is asked.
    let pull = |vars: &[(&str, &str)]| {
        let _ = fs::remove_dir_all(&fresh);
        std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--root")
            .arg(&fresh)
            .args(["pull", &target])
            .envs(vars.iter().copied())
            .output()
            .unwrap()
    };
    assert_eq!(ok(&pull(&vars)).trim(), digest);
    ok(&env.kiln_with(&["logout", addr], &vars, None));
    assert!(
        calls(&keep).contains(&format!("erase {addr}")),
        "{:?}",
        calls(&keep)
    );
    let out = pull(&vars);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));

    // `credHelpers`: this registry's helper, before a `credsStore` that does not exist.
    let docker = env.dir.join("docker-per-registry");
    fs::create_dir_all(&docker).unwrap();
    fs::write(
        docker.join("config.json"),
        format!(r#"{{"credsStore":"absent-helper","credHelpers":{{"{addr}":"kilntest"}}}}"#),
    )
    .unwrap();
    let vars = [
        ("DOCKER_CONFIG", docker.to_str().unwrap()),
        ("PATH", path.as_str()),
        ("KILNTEST_STORE", keep.to_str().unwrap()),
    ];
    fs::remove_file(keep.join("calls")).unwrap();
    ok(&env.kiln_with(
        &["login", "-u", "kiln", "--password-stdin", addr],
        &vars,
        Some(format!("{PASSWORD}\n").as_bytes()),
    ));
    assert_eq!(ok(&pull(&vars)).trim(), digest);
    let seen = calls(&keep);
    assert!(seen.contains(&format!("store {addr}")), "{seen:?}");
    assert!(seen.contains(&format!("get {addr}")), "{seen:?}");
    ok(&env.kiln_with(&["logout", addr], &vars, None));
    assert!(calls(&keep).contains(&format!("erase {addr}")));
    // Nothing kept a secret where Docker's helpers are meant to keep it instead.
    for f in [
        docker.join("config.json"),
        env.dir.join("docker-default/config.json"),
    ] {
        assert!(!fs::read_to_string(&f).unwrap().contains(PASSWORD));
    }
}

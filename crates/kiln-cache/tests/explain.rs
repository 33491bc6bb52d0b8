//! Explained misses: the index remembers each step's components and names what changed.

mod common;

use kiln_cache::{Cache, Change, Delta, KeyBuilder, KeyExplanation, Miss, Parent, StepIdentity};
use kiln_fileop::MerkleHash;
use kiln_layer::Digest;

fn id(step: u32) -> StepIdentity {
    StepIdentity {
        dockerfile: "/src/app/Dockerfile".into(),
        stage: "build".into(),
        step,
    }
}

fn files(contents: &[(&str, &str)]) -> MerkleHash {
    let leaves: Vec<(String, Digest)> = contents
        .iter()
        .map(|(p, c)| ((*p).to_owned(), Digest::of(c.as_bytes())))
        .collect();
    let mut all = Vec::new();
    for (_, d) in &leaves {
        all.extend_from_slice(d.hex().as_bytes());
    }
    MerkleHash {
        root: Digest::of(&all),
        leaves,
    }
}

/// The two steps of a stage: `COPY . /app` then `RUN make`, with a build arg.
fn steps(base: &str, version: &str, tree: &MerkleHash) -> (KeyExplanation, KeyExplanation) {
    let (copy_key, copy) = KeyBuilder::new(
        Parent::BaseImage(Digest::of(base.as_bytes())),
        "COPY . /app",
        "linux/amd64",
    )
    .files(tree.clone())
    .finish();
    let (_, run) = KeyBuilder::new(Parent::Step(copy_key), "RUN make", "linux/amd64")
        .arg("VERSION", Some(version))
        .env("PATH", "/usr/bin:/bin")
        .finish();
    (copy, run)
}

#[test]
fn misses_name_the_changed_component() {
    let (_dir, store) = common::store();
    let cache = Cache::open(&store).unwrap();
    let tree = files(&[("/a.c", "int a;"), ("/b.c", "int b;")]);
    let (copy, run) = steps("alpine", "1", &tree);

    // Never built: nothing to compare with.
    assert_eq!(cache.explain(&id(0), &copy).unwrap(), Miss::FirstBuild);
    cache.remember_step(&id(0), &copy).unwrap();
    cache.remember_step(&id(1), &run).unwrap();

    // A build arg changed: only the RUN step's key changes, and the arg is named.
    let (copy2, run2) = steps("alpine", "2", &tree);
    assert_eq!(copy2.key, copy.key);
    assert_eq!(
        cache.explain(&id(1), &run2).unwrap(),
        Miss::Changed(vec![Change::Arg {
            name: "VERSION".into(),
            delta: Delta::Changed
        }])
    );

    // One file changed and one added: the COPY names both, the RUN names its parent.
    let tree2 = files(&[("/a.c", "int a;"), ("/b.c", "int b = 1;"), ("/c.c", "")]);
    let (copy3, run3) = steps("alpine", "1", &tree2);
    let Miss::Changed(changes) = cache.explain(&id(0), &copy3).unwrap() else {
        panic!("expected a change");
    };
    assert_eq!(
        changes,
        vec![
            Change::File {
                path: "/b.c".into(),
                delta: Delta::Changed
            },
            Change::File {
                path: "/c.c".into(),
                delta: Delta::Added
            },
        ]
    );
    assert_eq!(changes[0].to_string(), "file `/b.c` changed");
    let Miss::Changed(changes) = cache.explain(&id(1), &run3).unwrap() else {
        panic!("expected a change");
    };
    assert!(
        matches!(
            &changes[..],
            [Change::Parent {
                old: Parent::Step(_),
                new: Parent::Step(_)
            }]
        ),
        "{changes:?}"
    );
    assert_eq!(changes[0].to_string(), "previous step changed");

    // A new base image.
    let (copy4, _) = steps("debian", "1", &tree);
    let Miss::Changed(changes) = cache.explain(&id(0), &copy4).unwrap() else {
        panic!("expected a change");
    };
    assert!(
        changes[0].to_string().starts_with("base image changed"),
        "{}",
        changes[0]
    );

    // The same key as last time, but its record is gone.
    assert_eq!(cache.explain(&id(0), &copy).unwrap(), Miss::Evicted);
}

#[test]
fn explanations_survive_reopening_and_leaves_are_optional() {
    let (_dir, store) = common::store();
    let tree = files(&[("/x", "1")]);
    let (copy, _) = steps("alpine", "1", &tree);
    Cache::open(&store)
        .unwrap()
        .remember_step(&id(0), &copy)
        .unwrap();
    let cache = Cache::open(&store).unwrap();
    assert_eq!(cache.last_step(&id(0)).unwrap().as_ref(), Some(&copy));

    // Without the leaves, a changed tree is reported as a whole.
    let (_, rootonly) = KeyBuilder::new(
        Parent::BaseImage(Digest::of(b"alpine")),
        "COPY . /app",
        "linux/amd64",
    )
    .files_root(files(&[("/x", "2")]).root)
    .finish();
    assert_eq!(
        cache.explain(&id(0), &rootonly).unwrap(),
        Miss::Changed(vec![Change::Files])
    );
    // Other steps of other Dockerfiles are separate.
    let other = StepIdentity {
        dockerfile: "/src/other/Dockerfile".into(),
        ..id(0)
    };
    assert_eq!(cache.explain(&other, &copy).unwrap(), Miss::FirstBuild);
}

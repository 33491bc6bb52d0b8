//! Where a build's images come from: base images and `--from=<image>` are resolved through
//! [`ImageResolver`], once per image per build, before the stage threads start. The store is
//! the resolver today; the registry issue plugs a network resolver in here.

use std::collections::HashMap;
use std::sync::Arc;

use kiln_frontend::{Base, Plan};
use kiln_oci::Image;

/// Why an image could not be resolved (the resolver's own error).
pub type ResolveError = Arc<dyn std::error::Error + Send + Sync>;

/// Finds images by the names a Dockerfile gives them.
pub trait ImageResolver: Send + Sync {
    /// The image `name` refers to (`busybox`, `local/app:1`, `name@sha256:...`).
    fn resolve(&self, name: &str) -> Result<Image, ResolveError>;
}

impl ImageResolver for kiln_oci::Store {
    fn resolve(&self, name: &str) -> Result<Image, ResolveError> {
        kiln_oci::Store::resolve(self, name).map_err(|e| Arc::new(e) as ResolveError)
    }
}

/// The images a build uses, each resolved once: every needed stage's base image and the
/// images its `COPY --from` and `RUN --mount from=` name. A name the plan could not see (an
/// ONBUILD trigger's) is resolved when asked for.
pub(crate) struct Images<'a> {
    resolver: &'a dyn ImageResolver,
    resolved: HashMap<String, Result<Image, ResolveError>>,
}

impl<'a> Images<'a> {
    /// Resolves what `plan`'s needed stages name.
    pub(crate) fn for_plan(resolver: &'a dyn ImageResolver, plan: &Plan) -> Self {
        let mut images = Self {
            resolver,
            resolved: HashMap::new(),
        };
        images.add_plan(plan);
        images
    }

    /// Resolves what `plan`'s needed stages name and is not resolved yet (a plan grown by
    /// the stages ONBUILD triggers read).
    pub(crate) fn add_plan(&mut self, plan: &Plan) {
        for stage in plan.stages.iter().filter(|s| s.needed) {
            let base = match &stage.base {
                Base::Image(name) => Some(name),
                Base::Scratch | Base::Stage(_) => None,
            };
            for name in base
                .into_iter()
                .chain(stage.image_refs.iter().map(|r| &r.name))
            {
                if !self.resolved.contains_key(name) {
                    let found = self.resolver.resolve(name);
                    self.resolved.insert(name.clone(), found);
                }
            }
        }
    }

    /// The image `name` refers to.
    pub(crate) fn get(&self, name: &str) -> Result<Image, ResolveError> {
        match self.resolved.get(name) {
            Some(r) => r.clone(),
            None => self.resolver.resolve(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A resolver that knows no image and counts the questions.
    #[derive(Default)]
    struct Counting(Mutex<Vec<String>>);

    impl ImageResolver for Counting {
        fn resolve(&self, name: &str) -> Result<Image, ResolveError> {
            self.0.lock().unwrap().push(name.to_owned());
            Err(Arc::new(std::io::Error::other(format!("no `{name}`"))))
        }
    }

    #[test]
    fn each_image_is_resolved_once_and_only_for_needed_stages() {
        let df = kiln_syntax::parse(
            "FROM base AS a\nCOPY --from=tool /x /x\n\
             FROM base AS b\nRUN --mount=from=tool,target=/t true\n\
             FROM unused AS c\n\
             FROM a\nCOPY --from=b /x /y\n",
        )
        .unwrap();
        let plan = kiln_frontend::plan(&df, &kiln_frontend::BuildOptions::default()).unwrap();
        let counting = Counting::default();
        let images = Images::for_plan(&counting, &plan);
        let mut asked = counting.0.lock().unwrap().clone();
        asked.sort();
        assert_eq!(asked, ["base", "tool"], "once each; `unused` is not needed");
        assert!(images.get("base").is_err());
        assert_eq!(
            counting.0.lock().unwrap().len(),
            2,
            "answered from what was resolved"
        );
        let _ = images.get("other");
        assert_eq!(
            counting.0.lock().unwrap().len(),
            3,
            "an unplanned name is asked for"
        );
    }
}

//! Job kinds a worker can run: kind name → type-erased handler, with its timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use uuid::Uuid;

use super::{Job, JobError, JobId};

/// What a running job knows about itself.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub id: JobId,
    pub kind: String,
    /// 1 on the first run.
    pub attempt: i32,
    pub max_attempts: i32,
    /// The worker process running it.
    pub worker_id: Uuid,
}

type Handler =
    Arc<dyn Fn(serde_json::Value, JobContext) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Registered {
    pub handler: Handler,
    pub queue: &'static str,
    pub timeout: Option<Duration>,
}

/// The job kinds this process runs. Built once at start-up.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: HashMap<&'static str, Registered>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.kinds.keys()).finish()
    }
}

impl Registry {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `J` with the context its runs receive.
    ///
    /// # Panics
    /// When the kind is registered twice: a programming error caught at start-up.
    pub fn register<J: Job>(&mut self, ctx: J::Context) -> &mut Self {
        let handler: Handler = Arc::new(move |payload, job| {
            let ctx = ctx.clone();
            async move {
                let value: J = serde_json::from_value(payload).map_err(|e| {
                    JobError::permanent(anyhow::anyhow!("payload is not a valid {}: {e}", J::KIND))
                })?;
                value.run(ctx, job).await
            }
            .boxed()
        });
        let previous =
            self.kinds.insert(J::KIND, Registered { handler, queue: J::QUEUE, timeout: J::TIMEOUT });
        assert!(previous.is_none(), "job kind {} registered twice", J::KIND);
        self
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&Registered> {
        self.kinds.get(kind)
    }

    /// Kinds registered for `queue` or for its `_large` sibling's base queue.
    #[must_use]
    pub fn kinds_for_queue(&self, queue: &str) -> Vec<String> {
        let base = queue.strip_suffix("_large").unwrap_or(queue);
        let mut kinds: Vec<String> = self
            .kinds
            .iter()
            .filter(|(_, r)| r.queue == queue || r.queue == base)
            .map(|(k, _)| (*k).to_owned())
            .collect();
        kinds.sort();
        kinds
    }

    #[must_use]
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self.kinds.keys().copied().collect();
        kinds.sort_unstable();
        kinds
    }
}

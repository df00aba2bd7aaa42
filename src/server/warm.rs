//! The proxy service with pre-warming started on its runtime: upstream connections belong to
//! the runtime that opened them, and the proxy's requests are the ones that reuse them.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::Service;

use crate::upstream::Prewarmer;

/// A service that starts [`Prewarmer::run`] on its own runtime, then runs `inner`.
pub struct WithPrewarm<S> {
    pub inner: S,
    pub prewarm: Arc<Prewarmer>,
}

#[async_trait]
impl<S: Service> Service for WithPrewarm<S> {
    async fn start_service(
        &mut self,
        #[cfg(unix)] fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
    ) {
        tokio::spawn(self.prewarm.clone().run());
        self.inner
            .start_service(
                #[cfg(unix)]
                fds,
                shutdown,
                listeners_per_fd,
            )
            .await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn threads(&self) -> Option<usize> {
        self.inner.threads()
    }
}

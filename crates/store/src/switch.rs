//! An on/off switch shared by the clones of a store handle, holding the worker to wake after a
//! commit that gave it work. The push outbox and the webhook events each have one, on both
//! backends.

use std::sync::{Arc, RwLock};

use tokio::sync::Notify;

use crate::{Error, Result};

/// Off until [`Switch::enable`]; then on, with the worker to wake.
#[derive(Debug, Clone, Default)]
pub(crate) struct Switch(Arc<RwLock<Option<Arc<Notify>>>>);

impl Switch {
    /// Turns the switch on; `what` names it in the error of a poisoned lock.
    pub(crate) fn enable(&self, what: &str, wake: Arc<Notify>) -> Result<()> {
        let mut slot = self
            .0
            .write()
            .map_err(|_| Error::Invalid(format!("the {what} switch is poisoned")))?;
        *slot = Some(wake);
        Ok(())
    }

    /// Whether the switch is on.
    pub(crate) fn is_on(&self) -> bool {
        self.0.read().is_ok_and(|g| g.is_some())
    }

    /// Wakes the worker (a permit is kept when it is not waiting, so no wake is lost).
    pub(crate) fn wake(&self) {
        if let Some(w) = self.0.read().ok().and_then(|g| g.clone()) {
            w.notify_one();
        }
    }
}

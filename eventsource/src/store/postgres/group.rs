//! Group commit on PostgreSQL: what a queued append carries (shared by the sync store's
//! batch runner, `sync/group.rs`; the queueing is [`crate::store::group`]).

use uuid::Uuid;

use super::ops::{self, AppendBatch};
use crate::error::Result;
use crate::event::NewEvent;

/// One append waiting for its batch: owned, since the leader runs it on its own thread.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) aggregate_id: Uuid,
    pub(crate) aggregate_type: String,
    pub(crate) expected: u64,
    pub(crate) events: Vec<NewEvent>,
    /// The events' metadata, encoded as JSON by the caller.
    pub(crate) metadata: Vec<String>,
}

impl Staged {
    /// Checks and lays out the append for [`super::sql::APPEND`] (the same checks as an
    /// append without group commit).
    pub(crate) fn new(aggregate_id: Uuid, aggregate_type: &str, expected: u64, events: &[NewEvent]) -> Result<Self> {
        let metadata = ops::encode_metadata(events)?;
        // Fail the caller before it queues when the batch itself is invalid.
        AppendBatch::new(aggregate_id, aggregate_type, expected, events, &metadata)?;
        Ok(Self {
            aggregate_id,
            aggregate_type: aggregate_type.to_owned(),
            expected,
            events: events.to_vec(),
            metadata,
        })
    }

    /// The append's statement parameters.
    pub(crate) fn batch(&self) -> Result<AppendBatch<'_>> {
        AppendBatch::new(
            self.aggregate_id,
            &self.aggregate_type,
            self.expected,
            &self.events,
            &self.metadata,
        )
    }
}

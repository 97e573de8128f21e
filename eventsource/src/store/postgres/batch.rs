//! The rows of a batch joint read (`sql::JOINT_READ_MANY`) handed to a [`BatchVisitor`],
//! shared by the sync and async stores: each aggregate's header row (decoded as the
//! one-aggregate joint read decodes it), then its events unless the visitor declined them.

use tokio_postgres::Row;
use uuid::Uuid;

use super::ops::Header;
use super::rows;
use crate::error::Result;
use crate::store::BatchVisitor;

/// Where a batch read is: the aggregate whose rows are arriving, and whether its events are
/// wanted.
pub(crate) struct BatchRows<'a, V: ?Sized> {
    ids: &'a [Uuid],
    aggregate_type: &'a str,
    visitor: &'a mut V,
    current: Option<usize>,
    deliver: bool,
}

impl<'a, V: BatchVisitor + ?Sized> BatchRows<'a, V> {
    /// A read of `ids` (the statement's `$1`, positions 1, 2, ...) for `visitor`.
    pub(crate) fn new(ids: &'a [Uuid], aggregate_type: &'a str, visitor: &'a mut V) -> Self {
        Self {
            ids,
            aggregate_type,
            visitor,
            current: None,
            deliver: false,
        }
    }

    /// One row; always goes on (a visitor's error stops the read).
    pub(crate) fn row(&mut self, row: &Row) -> Result<bool> {
        let index = rows::batch_index(row, self.ids.len())?;
        if self.current != Some(index) {
            // The first row of an aggregate is its header (sort key 0).
            self.current = Some(index);
            let id = self.ids.get(index).copied().unwrap_or_default();
            let mut header = Header::Pending;
            self.deliver = match header.decode(row, id, self.aggregate_type) {
                Some(decoded) => self.visitor.snapshot(index, decoded.snapshot)?,
                // Unreadable: no `snapshot` call, so the repository reads this one alone.
                None => false,
            };
            return Ok(true);
        }
        if self.deliver {
            self.visitor.event(index, &rows::replay_event(row)?)?;
        }
        Ok(true)
    }
}

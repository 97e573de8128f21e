//! The default batch joint read: one [`JointVisitor`] per requested aggregate, made from
//! the batch's [`BatchVisitor`] and the aggregate's position, so a store without a batch
//! statement reads a batch with its one-aggregate joint read.

use crate::error::Result;
use crate::event::ReplayEvent;
use crate::snapshot::Snapshot;
use crate::store::{BatchVisitor, JointVisitor};

/// The batch visitor seen as the joint visitor of the aggregate at `index`.
pub(crate) struct Nth<'v, V: ?Sized> {
    visitor: &'v mut V,
    index: usize,
}

impl<'v, V: BatchVisitor + ?Sized> Nth<'v, V> {
    /// The joint visitor of the aggregate at `index`.
    pub(crate) fn new(visitor: &'v mut V, index: usize) -> Self {
        Self { visitor, index }
    }
}

impl<V: BatchVisitor + ?Sized> JointVisitor for Nth<'_, V> {
    fn snapshot(&mut self, snapshot: Option<Snapshot>) -> Result<bool> {
        self.visitor.snapshot(self.index, snapshot)
    }

    fn event(&mut self, event: &ReplayEvent<'_>) -> Result<()> {
        self.visitor.event(self.index, event)
    }
}

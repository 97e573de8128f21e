//! The commands that need the aggregates' code: what a registered aggregate type can do,
//! type-erased so that one binary holds several.

use std::marker::PhantomData;

use eventsource::{Aggregate, AggregateRepository, Codec, PrepopulateReport, Progress, VerifyReport};
use uuid::Uuid;

use crate::db::Stores;
use crate::error::Result;

/// Progress of a batch, reported after each aggregate.
pub(crate) type OnProgress<'a> = &'a (dyn Fn(Progress) + Sync);

/// What the command does with one registered aggregate type.
pub(crate) trait AggregateOps<C: Codec>: Send + Sync {
    /// The aggregate type (`Aggregate::TYPE`).
    fn type_name(&self) -> &'static str;
    /// Loads each aggregate by replay and writes its snapshot.
    fn prepopulate(&self, stores: &Stores<C>, ids: &[Uuid], progress: OnProgress<'_>) -> Result<PrepopulateReport>;
    /// Compares each snapshot with a full replay.
    fn verify(&self, stores: &Stores<C>, ids: &[Uuid], progress: OnProgress<'_>) -> Result<VerifyReport>;
}

/// A registered aggregate type.
pub(crate) struct Registered<A>(PhantomData<fn() -> A>);

impl<A> Registered<A> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

/// Runs `$body` with `$repo`, a repository of `$a` over the stores.
macro_rules! with_repository {
    ($stores:expr, $a:ty, |$repo:ident| $body:expr) => {
        match $stores {
            Stores::Sqlite { events, snapshots, .. } => {
                let $repo = AggregateRepository::<$a, _>::new(events.clone()).with_snapshot_store(snapshots.clone());
                $body
            }
            #[cfg(feature = "postgres")]
            Stores::Postgres { events, snapshots } => {
                let $repo = AggregateRepository::<$a, _>::new(events.clone()).with_snapshot_store(snapshots.clone());
                $body
            }
        }
    };
}

impl<A: Aggregate + PartialEq, C: Codec> AggregateOps<C> for Registered<A> {
    fn type_name(&self) -> &'static str {
        A::TYPE
    }

    fn prepopulate(&self, stores: &Stores<C>, ids: &[Uuid], progress: OnProgress<'_>) -> Result<PrepopulateReport> {
        Ok(with_repository!(stores, A, |repo| repo.prepopulate(ids, progress))?)
    }

    fn verify(&self, stores: &Stores<C>, ids: &[Uuid], progress: OnProgress<'_>) -> Result<VerifyReport> {
        Ok(with_repository!(stores, A, |repo| repo.verify_many(ids, progress))?)
    }
}

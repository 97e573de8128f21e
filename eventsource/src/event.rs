//! The stored-event envelope and its metadata.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::{DecodedEvent, EventSet};
use crate::codec::Codec;
use crate::error::{Error, EventDecodeError, Result};

/// Who and what caused an event. Stored as JSON in the `metadata` column whatever the
/// codec, so operators can query it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Id shared by every event caused by one request or workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// Id of the message or event that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// Who acted (a user or service id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    /// The tenant, in a multi-tenant application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Free key/values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl Metadata {
    /// Whether nothing is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Metadata::default()
    }

    /// Encodes as JSON (the `metadata` column).
    ///
    /// # Errors
    ///
    /// [`Error::MalformedRow`] when the metadata does not encode.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::MalformedRow {
            table: "events",
            message: format!("metadata does not encode: {e}"),
        })
    }

    /// Decodes the `metadata` column; an empty column is empty metadata.
    ///
    /// # Errors
    ///
    /// [`Error::MalformedRow`] when the text is not valid JSON metadata.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        if bytes.is_empty() {
            return Ok(Metadata::default());
        }
        serde_json::from_slice(bytes).map_err(|e| Error::MalformedRow {
            table: "events",
            message: format!("metadata is not valid JSON metadata: {e}"),
        })
    }
}

/// An event ready to append: already encoded by the event store's codec.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id (UUID v7, so ids sort by creation time).
    pub event_id: Uuid,
    /// Stored event type.
    pub event_type: String,
    /// Stored event payload version.
    pub event_version: u32,
    /// When the event happened (when it was recorded).
    pub occurred_at: DateTime<Utc>,
    /// Encoded payload: the event's own fields.
    pub payload: Vec<u8>,
    /// Metadata of the event.
    pub metadata: Metadata,
}

impl NewEvent {
    /// Encodes a domain event with `codec`, with a fresh UUID v7 id, occurring now.
    ///
    /// # Errors
    ///
    /// [`Error::EventEncode`] when the event does not encode.
    pub fn encode<E: EventSet, C: Codec>(event: &E, codec: &C, metadata: &Metadata) -> Result<Self> {
        Self::encode_as(event, Uuid::now_v7(), crate::time::now(), codec, metadata)
    }

    /// Encodes a domain event with `codec` under a given id and occurrence time (those of
    /// an event recorded on an [`AggregateRoot`](crate::AggregateRoot), so that a retried
    /// save sends the same ids).
    ///
    /// # Errors
    ///
    /// [`Error::EventEncode`] when the event does not encode.
    pub fn encode_as<E: EventSet, C: Codec>(
        event: &E,
        event_id: Uuid,
        occurred_at: DateTime<Utc>,
        codec: &C,
        metadata: &Metadata,
    ) -> Result<Self> {
        Ok(NewEvent {
            event_id,
            event_type: event.event_type().to_owned(),
            event_version: event.event_version(),
            occurred_at,
            payload: event.encode_payload(codec).map_err(|source| Error::EventEncode {
                event_type: event.event_type().to_owned(),
                source,
            })?,
            metadata: metadata.clone(),
        })
    }
}

/// What a replay needs of a stored event: its version, its type, its event version and its
/// payload, borrowed from the row being read. Stores read only these columns when they
/// replay ([`EventStore::replay_stream`](crate::EventStore::replay_stream)), so a load does
/// not pay for ids, timestamps and metadata it does not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayEvent<'a> {
    /// The stream version (1 for the first event of a stream).
    pub version: u64,
    /// The event type.
    pub event_type: &'a str,
    /// The event payload version: which shape of the event the payload has (an older one
    /// is upcast on replay, see [`DomainEvent`](crate::DomainEvent)).
    pub event_version: u32,
    /// Encoded payload.
    pub payload: &'a [u8],
}

/// A stored event as a backend hands it out, borrowing from the row being read.
///
/// Replay visits these without copying payloads; call [`to_owned`](Self::to_owned) to keep
/// one.
#[derive(Debug, Clone, Copy)]
pub struct EventRecord<'a> {
    /// Position in the whole store (insertion order).
    pub global_position: i64,
    /// The event id.
    pub event_id: Uuid,
    /// The aggregate id.
    pub aggregate_id: Uuid,
    /// The aggregate type.
    pub aggregate_type: &'a str,
    /// The event type.
    pub event_type: &'a str,
    /// The event payload version.
    pub event_version: u32,
    /// The stream version (1 for the first event of a stream).
    pub version: u64,
    /// When the event happened.
    pub occurred_at: DateTime<Utc>,
    /// When the store committed it.
    pub stored_at: DateTime<Utc>,
    /// Encoded payload.
    pub payload: &'a [u8],
    /// Metadata as JSON.
    pub metadata: &'a [u8],
}

impl EventRecord<'_> {
    /// The part of the record a replay needs.
    #[must_use]
    pub fn replay(&self) -> ReplayEvent<'_> {
        ReplayEvent {
            version: self.version,
            event_type: self.event_type,
            event_version: self.event_version,
            payload: self.payload,
        }
    }

    /// Copies the record out of the row.
    ///
    /// # Errors
    ///
    /// [`Error::MalformedRow`] when the metadata is not valid JSON metadata.
    pub fn to_owned(&self) -> Result<StoredEvent> {
        Ok(StoredEvent {
            global_position: self.global_position,
            event_id: self.event_id,
            aggregate_id: self.aggregate_id,
            aggregate_type: self.aggregate_type.to_owned(),
            event_type: self.event_type.to_owned(),
            event_version: self.event_version,
            version: self.version,
            occurred_at: self.occurred_at,
            stored_at: self.stored_at,
            payload: self.payload.to_vec(),
            metadata: Metadata::from_json(self.metadata)?,
        })
    }
}

/// A stored event, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Position in the whole store (insertion order).
    pub global_position: i64,
    /// The event id.
    pub event_id: Uuid,
    /// The aggregate id.
    pub aggregate_id: Uuid,
    /// The aggregate type.
    pub aggregate_type: String,
    /// The event type.
    pub event_type: String,
    /// The event payload version.
    pub event_version: u32,
    /// The stream version.
    pub version: u64,
    /// When the event happened.
    pub occurred_at: DateTime<Utc>,
    /// When the store committed it.
    pub stored_at: DateTime<Utc>,
    /// Encoded payload.
    pub payload: Vec<u8>,
    /// Metadata.
    pub metadata: Metadata,
}

impl StoredEvent {
    /// Decodes the payload into the aggregate's event enum, upcasting an older event version
    /// ([`EventSet::decode_stored`]). A retired event type has no domain event: it is an
    /// [`Error::EventDecode`] with [`EventDecodeError::Retired`]
    /// (replays skip such events instead).
    ///
    /// # Errors
    ///
    /// [`Error::EventDecode`] when the event does not decode.
    pub fn decode<E: EventSet, C: Codec>(&self, codec: &C) -> Result<Envelope<E>> {
        let decoded =
            E::decode_stored(codec, &self.event_type, self.event_version, &self.payload).and_then(|decoded| {
                match decoded {
                    DecodedEvent::Event(event) => Ok(event),
                    DecodedEvent::Retired => Err(EventDecodeError::Retired {
                        event_type: self.event_type.clone(),
                    }),
                }
            });
        let event = decoded.map_err(|source| Error::EventDecode {
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id,
            version: self.version,
            event_type: self.event_type.clone(),
            source: Box::new(source),
        })?;
        Ok(Envelope {
            event_id: self.event_id,
            aggregate_id: self.aggregate_id,
            aggregate_type: self.aggregate_type.clone(),
            event_version: self.event_version,
            version: self.version,
            occurred_at: self.occurred_at,
            stored_at: self.stored_at,
            metadata: self.metadata.clone(),
            event,
        })
    }
}

/// A decoded event with its envelope.
#[derive(Debug, Clone)]
pub struct Envelope<E> {
    /// The event id.
    pub event_id: Uuid,
    /// The aggregate id.
    pub aggregate_id: Uuid,
    /// The aggregate type.
    pub aggregate_type: String,
    /// The event payload version.
    pub event_version: u32,
    /// The stream version.
    pub version: u64,
    /// When the event happened.
    pub occurred_at: DateTime<Utc>,
    /// When the store committed it.
    pub stored_at: DateTime<Utc>,
    /// Metadata.
    pub metadata: Metadata,
    /// The domain event.
    pub event: E,
}

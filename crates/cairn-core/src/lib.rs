//! Cairn's domain model. Everything here is plain data and pure functions: no I/O, no HTTP, no storage
//! engine. Every other crate depends on this one, and this one depends on none of them.

pub mod event;
pub mod event_type;
pub mod id_map;
pub mod item;
pub mod matrix;
pub mod property;
pub mod time;
pub mod user;
pub mod validate;

pub use event::{Event, StoredEvent, CONTENT_ID_PREFIX};
pub use event_type::{EventKind, EventTypeConfig, EventTypes};
pub use id_map::IdMap;
pub use item::Item;
pub use matrix::{CsrMatrix, InteractionMatrix, Triplet};
pub use property::{PropertyValue, Scalar};
pub use time::{now_unix, Timestamp};
pub use user::User;
pub use validate::{Validate, ValidationError};

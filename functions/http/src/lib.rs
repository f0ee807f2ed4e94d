//! The HTTP function: `POST /image_generator {"prompt": ...}` behind API
//! Gateway (HTTP API payload 2.0, REST payload 1.0). Thin: parse the event,
//! call [`imagegen::Generator`], shape the answer.

pub mod event;
pub mod handler;
pub mod images;
pub mod reply;

pub use handler::{handle, respond, route};
pub use reply::Reply;

//! The edge of every function: what comes in (API Gateway HTTP API requests, the typed events
//! of schedules, state machines and EventBridge) and what goes out (Stax-shaped answers,
//! `{"Error", "Cause"}` refusals, the task envelope, failures under their vocabulary names),
//! who may do what (roles), and the start-up every `main` shares.
//!
//! - [`runtime`]: `run`, `run_http`, `run_with_http`; [`Failure`] for the runtime's errors.
//! - [`http`]: [`ApiRequest`], authorization, refusals, starting a workflow or undoing.
//! - [`stax`]: the Stax API's request and response shapes; [`policies`]: its Policies'.
//! - [`auth`]: principals to roles.

pub mod auth;
mod error;
pub mod events;
pub mod http;
pub mod policies;
pub mod runtime;
pub mod stax;

pub use auth::{AccessPolicy, AccessRole, Permission};
pub use error::{ApiError, ErrorBody};
pub use http::{
    ApiRequest, authorize, foundation_ready, member_account_type, refused_operation,
    start_operation_taking_over, start_or_undo, v2_response,
};
pub use runtime::{Failure, Incoming, init_tracing, run, run_http, run_with_http};
pub use stax::task_envelope;

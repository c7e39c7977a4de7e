//! The port through which handlers start the service's state machines and ask after their
//! executions.

use serde_json::Value;

use crate::task::ExecutionState;

/// Starting an execution by name (a Step Functions state machine in Lambda, a recording fake
/// in tests). Executions are named after the task they work for, so a retried request or step
/// starts one execution, never two.
pub trait StartWorkflow: Send + Sync {
    /// Starts execution `name`; starting the same name twice starts one execution.
    fn start_workflow(
        &self,
        name: &str,
        input: &Value,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;

    /// The id (ARN) of the execution that starting `name` starts: recorded on the task before
    /// the start, so that a lock whose execution ended can be told from one in use.
    fn execution_id(&self, name: &str) -> String;
}

/// Asking Step Functions after an execution of any of the service's state machines.
pub trait ExecutionStates: Send + Sync {
    /// What Step Functions says of the execution `execution`.
    fn execution_state(
        &self,
        execution: &str,
    ) -> impl std::future::Future<Output = Result<ExecutionState, String>> + Send;
}

//! The port through which handlers start the service's state machines.

use serde_json::Value;

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
}

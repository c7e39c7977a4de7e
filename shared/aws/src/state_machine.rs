//! Starting the service's state machines.

use serde_json::Value;

/// One state machine, started by name: the name is the task's id, so a retried request or
/// step starts one execution, never two.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub client: aws_sdk_sfn::Client,
    pub arn: String,
}

impl StateMachine {
    pub fn new(sdk: &crate::SdkConfig, arn: String) -> Self {
        StateMachine {
            client: aws_sdk_sfn::Client::new(sdk),
            arn,
        }
    }
}

impl domain::StartWorkflow for StateMachine {
    /// Starts the execution `name`; an execution of that name already started counts as started.
    async fn start_workflow(&self, name: &str, input: &Value) -> Result<(), String> {
        match self
            .client
            .start_execution()
            .state_machine_arn(&self.arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                Ok(())
            }
            Err(e) => Err(crate::error_message(&e)),
        }
    }

    /// `arn:…:stateMachine:M` starts `arn:…:execution:M:name` (AWS's format).
    fn execution_id(&self, name: &str) -> String {
        format!(
            "{}:{name}",
            self.arn.replacen(":stateMachine:", ":execution:", 1)
        )
    }
}

impl domain::ExecutionStates for StateMachine {
    async fn execution_state(&self, execution: &str) -> Result<domain::ExecutionState, String> {
        Executions {
            client: self.client.clone(),
        }
        .execution_state(execution)
        .await
    }
}

/// What Step Functions says of the service's executions (for a function that starts none).
#[derive(Debug, Clone)]
pub struct Executions {
    pub client: aws_sdk_sfn::Client,
}

impl Executions {
    pub fn new(sdk: &crate::SdkConfig) -> Self {
        Executions {
            client: aws_sdk_sfn::Client::new(sdk),
        }
    }
}

impl domain::ExecutionStates for Executions {
    async fn execution_state(&self, execution: &str) -> Result<domain::ExecutionState, String> {
        match self
            .client
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
        {
            Ok(out) => Ok(match out.status {
                aws_sdk_sfn::types::ExecutionStatus::Running
                | aws_sdk_sfn::types::ExecutionStatus::PendingRedrive => {
                    domain::ExecutionState::Running
                }
                ended => domain::ExecutionState::Ended(ended.as_str().to_owned()),
            }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                Ok(domain::ExecutionState::Missing)
            }
            Err(e) => Err(crate::error_message(&e)),
        }
    }
}

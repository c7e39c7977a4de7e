"""Step Functions' own integration (`states:startExecution.sync:2`): moto's interpreter passes
the ASL's PascalCase parameters to boto unchanged and returns boto's camelCase results; mapped
the way AWS does."""

from __future__ import annotations


def install_sfn_integration_names() -> None:
    import botocore.session
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    model = botocore.session.get_session().get_service_model("stepfunctions")
    operations = {name.lower(): name for name in model.operation_names}
    original = StateTaskServiceSfn._normalise_parameters

    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):  # noqa: ANN001
        original(self, parameters, boto_service_name, service_action_name)
        action = (service_action_name or self._get_boto_service_action()).replace("_", "").lower()
        operation = operations.get(action)
        if operation is None:
            return
        members = {m.lower(): m for m in model.operation_model(operation).input_shape.members}
        for key in list(parameters):
            wanted = members.get(key.lower())
            if wanted and wanted != key:
                parameters[wanted] = parameters.pop(key)

    def normalise_response(self, response, boto_service_name=None, service_action_name=None):  # noqa: ANN001
        import datetime

        if isinstance(response, dict):
            for key in list(response):
                value = response.pop(key)
                # Timestamps come back as epoch milliseconds, as Step Functions reports them.
                if isinstance(value, datetime.datetime):
                    value = int(value.timestamp() * 1000)
                response[key[0].upper() + key[1:]] = value

    StateTaskServiceSfn._normalise_parameters = normalise_parameters
    StateTaskServiceSfn._normalise_response = normalise_response

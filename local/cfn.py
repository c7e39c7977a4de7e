"""Reads template.yaml the way CloudFormation would, for the intrinsics this project uses.

The local stack provisions from the template itself, so what runs locally is what deploys:
the same table definition, the same state machine definitions with the same
DefinitionSubstitutions, the same function environment, routes, buses and rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml



# What `!Ref AWS::NoValue` resolves to: the list item or property holding it is left out.
NO_VALUE = object()

class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (`!Ref X` becomes `{"Ref": "X"}`)."""


def _short_form(loader: _Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _short_form)


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class Physical:
    """What `Ref` and `Fn::GetAtt` of a resource give."""

    ref: str
    attributes: dict[str, str]


class Resolver:
    """Resolves intrinsic functions against parameter values, pseudo parameters and the physical
    ids the local stack gives each resource."""

    def __init__(self, template: dict, parameters: dict[str, str], pseudo: dict[str, str]):
        self.template = template
        self.parameters = parameters
        self.pseudo = pseudo
        self.physical: dict[str, Physical] = {}
        declared = template.get("Parameters", {})
        for name, spec in declared.items():
            if name not in parameters and "Default" not in spec:
                raise ValueError(f"parameter {name} has no default and no local value")
        self.values = {n: str(parameters.get(n, spec.get("Default"))) for n, spec in declared.items()}
        unknown = set(parameters) - set(declared)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}")

    def condition(self, name: str) -> bool:
        """A named condition of the template's Conditions section."""
        try:
            return bool(self.resolve(self.template["Conditions"][name]))
        except KeyError:
            raise KeyError(f"condition {name} is not declared") from None

    def resources(self, type_: str | None = None) -> dict[str, dict]:
        """The resources CloudFormation would create: those whose Condition holds."""
        return {
            name: r for name, r in self.template.get("Resources", {}).items()
            if (type_ is None or r["Type"] == type_) and ("Condition" not in r or self.condition(r["Condition"]))
        }

    def output(self, name: str) -> Any:
        """The value of one of the template's Outputs."""
        return self.resolve(self.template["Outputs"][name]["Value"])

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.values:
            return self.values[name]
        if name in self.physical:
            return self.physical[name].ref
        raise KeyError(f"Ref {name}: unknown or not provisioned yet")

    def get_att(self, name: str, attribute: str) -> str:
        try:
            return self.physical[name].attributes[attribute]
        except KeyError:
            raise KeyError(f"GetAtt {name}.{attribute}: unknown or not provisioned yet") from None

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref" and value == "AWS::NoValue":
                return NO_VALUE
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                name, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Sub":
                return self._sub(value)
            if key == "Fn::Join":
                separator, items = value
                return separator.join(str(i) for i in self.resolve(items))
            if key == "Fn::Split":
                separator, text = value
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Equals":
                left, right = self.resolve(value)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(value[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in value)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in value)
            if key == "Condition":
                return self.condition(value)
            if key == "Fn::If":
                # Only the branch taken is resolved: the other may name a resource that does
                # not exist under this condition.
                name, when_true, when_false = value
                return self.resolve(when_true if self.condition(name) else when_false)
            if key.startswith("Fn::"):
                raise NotImplementedError(f"{key} is not supported by the local stack")
        resolved = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _sub(self, value: Any) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))

        def replace(match: re.Match) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(variables[expr])
            if "." in expr and not expr.startswith("AWS::"):
                name, attribute = expr.split(".", 1)
                return self.get_att(name, attribute)
            return self.ref(expr)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def function_setting(self, resource: dict, key: str) -> Any:
        """A function property, falling back to the template's Globals."""
        props = resource.get("Properties", {})
        if key in props:
            return props[key]
        return self.template.get("Globals", {}).get("Function", {}).get(key)

    def function_environment(self, resource: dict) -> dict[str, str]:
        global_vars = (
            self.template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
        )
        own = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        return {k: str(v) for k, v in self.resolve({**global_vars, **own}).items()}


def substitute_definition(definition: str, substitutions: dict[str, str]) -> str:
    """SAM's DefinitionSubstitutions: `${Key}` in the definition becomes the value."""
    def replace(match: re.Match) -> str:
        key = match.group(1)
        if key not in substitutions:
            raise KeyError(f"the definition uses ${{{key}}}, which DefinitionSubstitutions does not define")
        return substitutions[key]

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, definition)

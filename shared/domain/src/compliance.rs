//! The compliance rule bundle and the score.
//!
//! The bundle is data (`compliance/rules.json`, versioned with the code): each rule says where it
//! comes from (a CIS AWS Foundations Benchmark v3.0.0 control, or this service's own baseline),
//! its level, its weight, and how it is evaluated — a direct check through the account's role, an
//! AWS Config managed rule's result, or by a person (manual, never scored).
//!
//! The score copies Security Hub's formula, weighted: `100 × Σweight(PASSED) / Σweight(PASSED +
//! FAILED + UNKNOWN)`, rounded, over the rules that have data. NOT_APPLICABLE (nothing to
//! evaluate, no data, manual) is left out; an evaluation that failed is UNKNOWN, which counts
//! against the score, so an error is never a pass.

use std::collections::HashSet;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::string_enum;

/// The bundle this build carries.
pub const BUNDLE_JSON: &str = include_str!("../../../compliance/rules.json");

string_enum! {
    /// A rule's CIS profile level.
    pub enum Level {
        L1 => "L1",
        L2 => "L2",
    }
}

string_enum! {
    /// A rule's result for one account.
    pub enum RuleState {
        Passed => "PASSED",
        Failed => "FAILED",
        NotApplicable => "NOT_APPLICABLE",
        Unknown => "UNKNOWN",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Description")]
    pub description: String,
    #[serde(rename = "Rules")]
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Title")]
    pub title: String,
    #[serde(rename = "Source")]
    pub source: RuleSource,
    #[serde(rename = "Level")]
    pub level: Level,
    /// Severity: 3 high, 2 medium, 1 low.
    #[serde(rename = "Weight")]
    pub weight: u32,
    #[serde(rename = "Evaluation")]
    pub evaluation: Evaluation,
    /// The AWS Config managed rule that evaluates the same control (for reference, when the
    /// rule is evaluated by a direct check).
    #[serde(
        rename = "ConfigRule",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub config_rule: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSource {
    #[serde(rename = "Framework")]
    pub framework: String,
    #[serde(rename = "Control")]
    pub control: String,
}

/// How a rule is evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Evaluation {
    /// A direct check through the account's role, by name, with its parameters.
    Check {
        #[serde(rename = "Check")]
        check: String,
        #[serde(rename = "Parameters", default, skip_serializing_if = "Map::is_empty")]
        parameters: Map<String, Value>,
    },
    /// The result of the AWS Config managed rule with this identifier, where the account has it.
    ConfigRule {
        #[serde(rename = "ConfigRule")]
        identifier: String,
    },
    /// Needs a person; why.
    Manual {
        #[serde(rename = "Manual")]
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("the rule bundle is not valid JSON of the bundle's shape: {0}")]
    Shape(String),
    #[error("the rule bundle is inconsistent: {0}")]
    Inconsistent(String),
}

impl Bundle {
    pub fn parse(json: &str) -> Result<Self, BundleError> {
        let bundle: Bundle =
            serde_json::from_str(json).map_err(|e| BundleError::Shape(e.to_string()))?;
        let mut ids = HashSet::new();
        for rule in &bundle.rules {
            if !ids.insert(rule.id.as_str()) {
                return Err(BundleError::Inconsistent(format!(
                    "rule id {} appears twice",
                    rule.id
                )));
            }
            if !(1..=3).contains(&rule.weight) {
                return Err(BundleError::Inconsistent(format!(
                    "rule {} has weight {}; weights are 1, 2 or 3",
                    rule.id, rule.weight
                )));
            }
        }
        Ok(bundle)
    }

    /// The bundle this build carries (checked by a unit test, so it always parses).
    pub fn builtin() -> &'static Bundle {
        static BUNDLE: OnceLock<Bundle> = OnceLock::new();
        BUNDLE.get_or_init(|| Bundle::parse(BUNDLE_JSON).expect("compliance/rules.json is valid"))
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

/// One rule's result for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleResult {
    #[serde(rename = "RuleId")]
    pub rule_id: String,
    #[serde(rename = "State")]
    pub state: RuleState,
    /// What was found (for FAILED: what to fix; for UNKNOWN: why it could not be evaluated).
    #[serde(rename = "Reason")]
    pub reason: String,
}

/// The latest score, kept on the account record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceSummary {
    /// 0–100; absent when no rule had data.
    #[serde(rename = "Score", default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    #[serde(rename = "L1Score", default, skip_serializing_if = "Option::is_none")]
    pub l1_score: Option<u8>,
    #[serde(rename = "L2Score", default, skip_serializing_if = "Option::is_none")]
    pub l2_score: Option<u8>,
    #[serde(rename = "Passed")]
    pub passed: u32,
    #[serde(rename = "Failed")]
    pub failed: u32,
    #[serde(rename = "NotApplicable")]
    pub not_applicable: u32,
    #[serde(rename = "Unknown")]
    pub unknown: u32,
    #[serde(rename = "BundleVersion")]
    pub bundle_version: String,
    #[serde(rename = "EvaluatedTS", with = "crate::timestamp")]
    pub evaluated_ts: DateTime<Utc>,
}

/// `100 × Σweight(passed) / Σweight(passed, failed, unknown)`, rounded; None without data.
fn weighted(results: &[(&Rule, RuleState)]) -> Option<u8> {
    let (mut passed, mut counted) = (0u32, 0u32);
    for (rule, state) in results {
        match state {
            RuleState::Passed => {
                passed += rule.weight;
                counted += rule.weight;
            }
            RuleState::Failed | RuleState::Unknown => counted += rule.weight,
            RuleState::NotApplicable => {}
        }
    }
    // Integer rounding half up: (200p + c) / 2c.
    (counted > 0).then(|| ((200 * passed + counted) / (2 * counted)) as u8)
}

/// The summary of one account's results against `bundle`. Results for rules the bundle does not
/// have are ignored; a bundle rule without a result counts as UNKNOWN.
pub fn score(bundle: &Bundle, results: &[RuleResult], at: DateTime<Utc>) -> ComplianceSummary {
    let by_rule: Vec<(&Rule, RuleState)> = bundle
        .rules
        .iter()
        .map(|rule| {
            let state = results
                .iter()
                .find(|r| r.rule_id == rule.id)
                .map_or(RuleState::Unknown, |r| r.state);
            (rule, state)
        })
        .collect();
    let count = |s: RuleState| by_rule.iter().filter(|(_, st)| *st == s).count() as u32;
    let at_level = |l: Level| -> Vec<(&Rule, RuleState)> {
        by_rule
            .iter()
            .filter(|(r, _)| r.level == l)
            .cloned()
            .collect()
    };
    ComplianceSummary {
        score: weighted(&by_rule),
        l1_score: weighted(&at_level(Level::L1)),
        l2_score: weighted(&at_level(Level::L2)),
        passed: count(RuleState::Passed),
        failed: count(RuleState::Failed),
        not_applicable: count(RuleState::NotApplicable),
        unknown: count(RuleState::Unknown),
        bundle_version: bundle.version.clone(),
        evaluated_ts: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(rules: &[(&str, Level, u32)]) -> Bundle {
        Bundle {
            name: "test".into(),
            version: "1".into(),
            description: String::new(),
            rules: rules
                .iter()
                .map(|(id, level, weight)| Rule {
                    id: (*id).into(),
                    title: String::new(),
                    source: RuleSource {
                        framework: "test".into(),
                        control: (*id).into(),
                    },
                    level: *level,
                    weight: *weight,
                    evaluation: Evaluation::Manual {
                        reason: String::new(),
                    },
                    config_rule: None,
                })
                .collect(),
        }
    }

    fn result(id: &str, state: RuleState) -> RuleResult {
        RuleResult {
            rule_id: id.into(),
            state,
            reason: String::new(),
        }
    }

    #[test]
    fn the_builtin_bundle_parses_and_covers_every_cis_section() {
        let b = Bundle::builtin();
        assert!(b.rules.len() >= 60, "{}", b.rules.len());
        for section in ["1.", "2.", "3.", "4.", "5."] {
            assert!(
                b.rules
                    .iter()
                    .any(|r| r.source.control.starts_with(section)),
                "no rule of CIS section {section}"
            );
        }
        for monitoring in 1..=15 {
            let control = format!("4.{monitoring}");
            assert!(
                b.rules.iter().any(|r| r.source.control == control),
                "{control}"
            );
        }
    }

    #[test]
    fn the_score_is_weighted_passed_over_passed_failed_and_unknown() {
        let b = bundle(&[
            ("a", Level::L1, 3),
            ("b", Level::L1, 1),
            ("c", Level::L2, 2),
            ("d", Level::L2, 2),
            ("e", Level::L1, 3),
        ]);
        let at = Utc::now();
        let s = score(
            &b,
            &[
                result("a", RuleState::Passed),
                result("b", RuleState::Failed),
                result("c", RuleState::Unknown),
                result("d", RuleState::Passed),
                result("e", RuleState::NotApplicable),
            ],
            at,
        );
        // passed 3 + 2 = 5 of 3 + 1 + 2 + 2 = 8 -> 62.5 -> 63; L1: 3 of 4 -> 75; L2: 2 of 4 -> 50.
        assert_eq!(s.score, Some(63));
        assert_eq!(s.l1_score, Some(75));
        assert_eq!(s.l2_score, Some(50));
        assert_eq!(
            (s.passed, s.failed, s.not_applicable, s.unknown),
            (2, 1, 1, 1)
        );
        assert_eq!(s.evaluated_ts, at);
    }

    #[test]
    fn a_missing_result_is_unknown_and_no_data_means_no_score() {
        let b = bundle(&[("a", Level::L1, 2), ("b", Level::L2, 1)]);
        let s = score(&b, &[result("a", RuleState::Passed)], Utc::now());
        assert_eq!(s.unknown, 1);
        assert_eq!(s.score, Some(67));
        let none = score(
            &b,
            &[
                result("a", RuleState::NotApplicable),
                result("b", RuleState::NotApplicable),
            ],
            Utc::now(),
        );
        assert_eq!(
            (none.score, none.l1_score, none.l2_score),
            (None, None, None)
        );
    }

    #[test]
    fn a_failed_rule_costs_exactly_its_weight() {
        let b = bundle(&[
            ("a", Level::L1, 2),
            ("b", Level::L1, 1),
            ("c", Level::L1, 1),
        ]);
        let all = [
            result("a", RuleState::Passed),
            result("b", RuleState::Passed),
            result("c", RuleState::Passed),
        ];
        let mut one_failed = all.clone();
        one_failed[0].state = RuleState::Failed;
        assert_eq!(score(&b, &all, Utc::now()).score, Some(100));
        assert_eq!(score(&b, &one_failed, Utc::now()).score, Some(50));
    }

    #[test]
    fn inconsistent_bundles_are_refused() {
        let mut b = bundle(&[("a", Level::L1, 1), ("a", Level::L1, 1)]);
        let json = serde_json::to_string(&b).unwrap();
        assert!(matches!(
            Bundle::parse(&json),
            Err(BundleError::Inconsistent(_))
        ));
        b.rules.pop();
        b.rules[0].weight = 5;
        let json = serde_json::to_string(&b).unwrap();
        assert!(
            Bundle::parse(&json)
                .unwrap_err()
                .to_string()
                .contains("weight")
        );
        assert!(matches!(Bundle::parse("{}"), Err(BundleError::Shape(_))));
    }
}

//! Policies: one item each, changed over its version.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use domain::policies::Policy;
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, to_item};
use uuid::Uuid;

use super::*;
use crate::{Policies, Versioned};

const POLICY_SK: &str = "#POLICY";
const POLICIES_GSI1PK: &str = "POLICY";

fn policy_pk(id: Uuid) -> String {
    format!("POLICY#{id}")
}

#[derive(Serialize, Deserialize)]
struct PolicyItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(rename = "Version")]
    version: u64,
    #[serde(rename = "Policy")]
    policy: Policy,
}

fn policy_item(policy: &Policy, version: u64) -> Result<Item, StoreError> {
    to_item(PolicyItem {
        pk: policy_pk(policy.id),
        sk: POLICY_SK.into(),
        gsi1pk: POLICIES_GSI1PK.into(),
        gsi1sk: policy.id.to_string(),
        version,
        policy: policy.clone(),
    })
    .map_err(corrupt)
}

fn versioned(item: Item) -> Result<Versioned<Policy>, StoreError> {
    let item = from_item::<PolicyItem>(item).map_err(corrupt)?;
    Ok(Versioned {
        value: item.policy,
        version: item.version,
    })
}

impl Policies for DynamoStore {
    async fn list_policies(&self) -> Result<Vec<Versioned<Policy>>, StoreError> {
        self.query_gsi1(POLICIES_GSI1PK)
            .await?
            .into_iter()
            .map(versioned)
            .collect()
    }

    async fn get_policy(&self, id: Uuid) -> Result<Option<Versioned<Policy>>, StoreError> {
        self.get(policy_pk(id), POLICY_SK)
            .await?
            .map(versioned)
            .transpose()
    }

    async fn create_policy(&self, policy: &Policy) -> Result<(), StoreError> {
        let items = vec![put(&self.table, policy_item(policy, 1)?, NOT_EXISTS).build()?];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(Refused::Conditions(_)) => Err(StoreError::StalePolicy(policy.id)),
            Err(Refused::Other(e)) => Err(e),
        }
    }

    async fn replace_policy(
        &self,
        current: &Versioned<Policy>,
        next: &Policy,
    ) -> Result<Versioned<Policy>, StoreError> {
        let id = current.value.id;
        if next.id != id {
            return Err(StoreError::StalePolicy(id));
        }
        let items = vec![
            put(
                &self.table,
                policy_item(next, current.version + 1)?,
                "#v = :v",
            )
            .name("#v", "Version")
            .value(":v", AttributeValue::N(current.version.to_string()))
            .build()?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(Versioned {
                value: next.clone(),
                version: current.version + 1,
            }),
            Err(Refused::Conditions(_)) => Err(StoreError::StalePolicy(id)),
            Err(Refused::Other(e)) => Err(e),
        }
    }

    async fn remove_policy(&self, current: &Versioned<Policy>) -> Result<(), StoreError> {
        let id = current.value.id;
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(policy_pk(id), POLICY_SK)))
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", "Version")
            .expression_attribute_values(":v", AttributeValue::N(current.version.to_string()))
            .build()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match self
            .transact(vec![TransactWriteItem::builder().delete(delete).build()])
            .await
        {
            Ok(()) => Ok(()),
            Err(Refused::Conditions(_)) => Err(StoreError::StalePolicy(id)),
            Err(Refused::Other(e)) => Err(e),
        }
    }
}

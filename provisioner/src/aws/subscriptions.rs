//! The e-mail subscription of the alerts topic.
//!
//! An e-mail subscription stays "PendingConfirmation" until a person clicks the
//! link, and AWS refuses to unsubscribe it meanwhile (the trap of
//! terraform-provider-aws #7782). So: an existing subscription for the same
//! address, pending or not, is the live resource (no second Subscribe on every
//! apply); a changed address is a replacement (subscribe the new, then
//! unsubscribe the old where AWS allows it); deleting a pending one is skipped
//! with a warning (AWS removes unconfirmed subscriptions after three days).

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{ARN, Aws, Done, aws_error};
use crate::engine::retry;
use crate::engine::{
    Declared, DeleteOutcome, Field, Fields, Live, Ref, ResourceError, Text, TypedKind, fields_of,
};
use crate::kind::export::{CodeLocation, Export, Part, object};
use crate::kind::{Access, Grant};

/// A subscription as declared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionSpec {
    pub topic_arn: Text,
    pub protocol: String,
    /// Compared case-insensitively: stored lower-case.
    pub endpoint: String,
}
crate::engine::fields!(SubscriptionSpec {
    TOPIC_ARN: topic_arn,
    PROTOCOL: protocol,
    ENDPOINT: endpoint,
});

/// Attributes a subscription exports (`PendingConfirmation` until confirmed).
impl crate::kind::HasArn for EmailSubscription {}

/// What SNS reports instead of an ARN for an unconfirmed subscription.
pub const PENDING: &str = "PendingConfirmation";

pub struct EmailSubscription {
    declared: Declared,
    spec: SubscriptionSpec,
    topic_name: String,
    aws: Arc<Aws>,
}

impl EmailSubscription {
    /// An e-mail subscription of the topic named `topic_name` (whose ARN `topic_arn` references).
    pub fn new(
        address: &str,
        topic_name: String,
        topic_arn: Ref,
        email: &str,
        aws: Arc<Aws>,
    ) -> Self {
        let spec = SubscriptionSpec {
            topic_arn: topic_arn.into(),
            protocol: "email".into(),
            endpoint: email.to_ascii_lowercase(),
        };
        let name = format!("{topic_name} -> {}", spec.endpoint);
        EmailSubscription {
            declared: Declared::of(address, name, &spec),
            spec,
            topic_name,
            aws,
        }
    }
}

/// One subscription as listed by `ListSubscriptionsByTopic`.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    pub arn: String,
    pub protocol: String,
    pub endpoint: String,
    pub topic_arn: String,
}

impl Listed {
    pub fn pending(&self) -> bool {
        self.arn == PENDING || self.arn.is_empty()
    }
}

/// The live subscription for `endpoint`: the one for that address if any
/// (confirmed preferred over pending), else another e-mail subscription of the
/// topic (the old address, to be replaced), else none.
pub fn pick<'a>(listed: &'a [Listed], protocol: &str, endpoint: &str) -> Option<&'a Listed> {
    let same_protocol = || listed.iter().filter(|s| s.protocol == protocol);
    same_protocol()
        .filter(|s| s.endpoint.eq_ignore_ascii_case(endpoint))
        .min_by_key(|s| s.pending())
        .or_else(|| same_protocol().min_by_key(|s| s.pending()))
}

/// Whether a subscription can be unsubscribed now; the reason if not.
pub fn can_unsubscribe(arn: &str) -> Result<(), String> {
    if arn == PENDING || arn.is_empty() {
        Err("the e-mail subscription is still pending confirmation and AWS does not allow unsubscribing it; it expires after 3 days unless the link in the e-mail is clicked".into())
    } else {
        Ok(())
    }
}

fn live_of(s: &Listed) -> Live {
    let mut live = Live {
        fields: fields_of(&SubscriptionSpec {
            topic_arn: Text::literal(&s.topic_arn),
            protocol: s.protocol.clone(),
            endpoint: s.endpoint.to_ascii_lowercase(),
        }),
        ..Live::default()
    };
    live.attrs.insert(ARN.into(), s.arn.clone());
    live.attrs.insert("pending".into(), s.pending().to_string());
    live
}

#[async_trait]
impl TypedKind for EmailSubscription {
    type Spec = SubscriptionSpec;
    const KIND: &'static str = "sns-subscription";
    /// Every field: SNS changes no subscription in place (the engine's
    /// default `update` says so, and is never reached).
    const REPLACE_ON: &'static [Field<SubscriptionSpec>] = &[
        SubscriptionSpec::TOPIC_ARN,
        SubscriptionSpec::PROTOCOL,
        SubscriptionSpec::ENDPOINT,
    ];

    fn declared(&self) -> &Declared {
        &self.declared
    }
    fn taggable(&self) -> bool {
        false
    }

    async fn read(&self) -> Result<Option<Live>, ResourceError> {
        let topic_arn = self.aws.arn("sns", &self.topic_name).await?;
        let mut listed = Vec::new();
        let mut pages = self
            .aws
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(&topic_arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            // The topic's NotFound reads as absent.
            let page = page.map_err(|e| {
                aws_error(
                    &format!("sns:ListSubscriptionsByTopic {}", self.topic_name),
                    e,
                )
            })?;
            listed.extend(
                page.subscriptions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| Listed {
                        arn: s.subscription_arn.unwrap_or_default(),
                        protocol: s.protocol.unwrap_or_default(),
                        endpoint: s.endpoint.unwrap_or_default(),
                        topic_arn: s.topic_arn.unwrap_or_else(|| topic_arn.clone()),
                    }),
            );
        }
        Ok(pick(&listed, &self.spec.protocol, &self.spec.endpoint).map(live_of))
    }

    async fn create(&self, spec: &SubscriptionSpec, _: &Fields) -> Result<Live, ResourceError> {
        let (topic_arn, protocol, endpoint) = (
            spec.topic_arn.to_string(),
            spec.protocol.clone(),
            spec.endpoint.clone(),
        );
        // Subscribe is idempotent for the same topic and address.
        let out = retry::call(|| async {
            self.aws
                .sns
                .subscribe()
                .topic_arn(&topic_arn)
                .protocol(&protocol)
                .endpoint(&endpoint)
                .return_subscription_arn(true)
                .send()
                .await
                .map_err(|e| aws_error(&format!("sns:Subscribe {endpoint} to {topic_arn}"), e))
        })
        .await?;
        Ok(live_of(&Listed {
            arn: out.subscription_arn.unwrap_or_else(|| PENDING.to_owned()),
            protocol,
            endpoint,
            topic_arn,
        }))
    }

    async fn delete(&self, live: &Live) -> Result<DeleteOutcome, ResourceError> {
        let arn = live.attrs.get(ARN).cloned().unwrap_or_default();
        if let Err(why) = can_unsubscribe(&arn) {
            return Ok(DeleteOutcome::Skipped(why));
        }
        retry::call(|| async {
            self.aws
                .sns
                .unsubscribe()
                .subscription_arn(&arn)
                .send()
                .await
                .done(&format!("sns:Unsubscribe {arn}"))
        })
        .await?;
        Ok(DeleteOutcome::Deleted)
    }
}

impl Export for EmailSubscription {
    fn cloudformation(&self, _code: &CodeLocation) -> Result<Vec<Part>, ResourceError> {
        let properties = object([
            ("TopicArn", serde_json::json!(self.spec.topic_arn.as_str())),
            ("Protocol", serde_json::json!(self.spec.protocol)),
            ("Endpoint", serde_json::json!(self.spec.endpoint)),
        ]);
        Ok(vec![Part::main("AWS::SNS::Subscription", properties)])
    }

    fn cloudformation_attr(&self, id: &str, attr: &str) -> Option<String> {
        (attr == ARN).then(|| format!("${{{id}}}"))
    }
}

/// Subscriptions are read, made and removed through their topic.
impl Access for EmailSubscription {
    fn read_access(&self) -> Vec<Grant> {
        vec![Grant::on(
            &["sns:ListSubscriptionsByTopic"],
            vec![self.spec.topic_arn.clone()],
        )]
    }

    fn write_access(&self) -> Vec<Grant> {
        vec![
            Grant::on(&["sns:Subscribe"], vec![self.spec.topic_arn.clone()]),
            // Unsubscribe names a subscription, which has no resource type:
            // `*` (held to the Region).
            Grant::unscoped(&["sns:Unsubscribe"]),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(arn: &str, endpoint: &str) -> Listed {
        Listed {
            arn: arn.into(),
            protocol: "email".into(),
            endpoint: endpoint.into(),
            topic_arn: "arn:aws:sns:eu-west-1:1:t".into(),
        }
    }

    #[test]
    fn a_pending_subscription_for_the_same_address_is_the_live_one() {
        let listed = [sub(PENDING, "team@example.com")];
        let got = pick(&listed, "email", "team@example.com").unwrap();
        assert!(got.pending());
        let live = live_of(got);
        assert_eq!(live.attrs["pending"], "true");
        assert_eq!(live.fields["endpoint"], "team@example.com");
    }

    #[test]
    fn confirmed_is_preferred_over_pending_and_case_is_ignored() {
        let listed = [
            sub(PENDING, "team@example.com"),
            sub("arn:aws:sns:eu-west-1:1:t:abc", "Team@Example.com"),
        ];
        assert_eq!(
            pick(&listed, "email", "team@example.com").unwrap().arn,
            "arn:aws:sns:eu-west-1:1:t:abc"
        );
    }

    #[test]
    fn another_address_is_returned_so_it_can_be_replaced() {
        let listed = [sub("arn:aws:sns:eu-west-1:1:t:old", "old@example.com")];
        assert_eq!(
            pick(&listed, "email", "new@example.com").unwrap().endpoint,
            "old@example.com"
        );
        assert!(pick(&listed, "sms", "new@example.com").is_none());
        assert!(pick(&[], "email", "new@example.com").is_none());
    }

    #[test]
    fn pending_subscriptions_cannot_be_unsubscribed() {
        assert!(
            can_unsubscribe(PENDING)
                .unwrap_err()
                .contains("pending confirmation")
        );
        assert!(can_unsubscribe("").is_err());
        assert!(can_unsubscribe("arn:aws:sns:eu-west-1:1:t:abc").is_ok());
    }
}

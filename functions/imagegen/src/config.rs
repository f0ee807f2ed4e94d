//! Configuration, only from the environment variables the provisioner sets.
//! Nothing about the bucket or prefix is written in code.

/// Default Bedrock region (the provisioner always sets `MODEL_REGION`): where
/// the stack file's default model, Stable Image Core, is offered.
pub const DEFAULT_MODEL_REGION: &str = "us-west-2";

use couch_contract::env;
use couch_contract::model::{Family, KNOWN_PREFIXES, PromptRule, family_of};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub bucket: String,
    pub prefix: String,
    pub model_id: String,
    pub model_region: String,
    /// The request shape `model_id` speaks, checked at start-up.
    pub family: Family,
    pub prompt_rule: PromptRule,
    /// The prompts queue's URL, from `QUEUE_ARN`: set for the HTTP
    /// function, whose `POST /images` sends there.
    pub queue_url: Option<String>,
    /// The queue's `maxReceiveCount` (`MAX_RECEIVE_COUNT`): set for the
    /// worker, whose last allowed receive of a prompt records it as failed.
    pub max_receive_count: Option<u32>,
    /// The dead-letter queue's name (`DLQ_NAME`): set for the worker,
    /// which moves the prompts it gives up there.
    pub dlq_name: Option<String>,
    /// The worker's model calls at once (`WORKER_CONCURRENCY`, 1 or more).
    pub worker_concurrency: Option<usize>,
    /// `WORKER_PACE=stated`: the stack states the model's capacity.
    pub capacity_stated: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (the provisioner sets it from the stack file)")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {why}")]
    Invalid { name: &'static str, why: String },
}

impl Config {
    /// Reads `IMAGE_BUCKET`, `IMAGE_PREFIX`, `MODEL_ID` and `MODEL_REGION` (optional).
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let required = |name: &'static str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let bucket = required(env::IMAGE_BUCKET)?;
        let prefix = required(env::IMAGE_PREFIX)?.trim_matches('/').to_owned();
        if prefix.is_empty() {
            return Err(ConfigError::Invalid {
                name: env::IMAGE_PREFIX,
                why: "it is only slashes".into(),
            });
        }
        let model_id = required(env::MODEL_ID)?;
        let (Some(family), Some(prompt_rule)) =
            (family_of(&model_id), PromptRule::for_model(&model_id))
        else {
            return Err(ConfigError::Invalid {
                name: env::MODEL_ID,
                why: format!("{model_id:?} is of no known model family ({KNOWN_PREFIXES})"),
            });
        };
        let model_region = get(env::MODEL_REGION)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_MODEL_REGION.to_owned());
        let optional = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let max_receive_count = match optional(env::MAX_RECEIVE_COUNT) {
            None => None,
            Some(v) => Some(v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                ConfigError::Invalid {
                    name: env::MAX_RECEIVE_COUNT,
                    why: format!("{v:?} is not a receive count (1 or more)"),
                }
            })?),
        };
        let dlq_name = match optional(env::DLQ_NAME) {
            None => None,
            // SQS's rule for a queue name: 1-80 of [A-Za-z0-9_-].
            Some(name)
                if name.len() <= 80
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
            {
                Some(name)
            }
            Some(name) => {
                return Err(ConfigError::Invalid {
                    name: env::DLQ_NAME,
                    why: format!("{name:?} is not an SQS queue name"),
                });
            }
        };
        let worker_concurrency = match optional(env::WORKER_CONCURRENCY) {
            None => None,
            Some(v) => Some(v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                ConfigError::Invalid {
                    name: env::WORKER_CONCURRENCY,
                    why: format!("{v:?} is not a number of calls (1 or more)"),
                }
            })?),
        };
        Ok(Config {
            bucket,
            prefix,
            model_id,
            model_region,
            family,
            prompt_rule,
            queue_url: match optional(env::QUEUE_ARN) {
                None => None,
                Some(arn) => Some(couch_contract::queue_url_of_arn(&arn).ok_or_else(|| {
                    ConfigError::Invalid {
                        name: env::QUEUE_ARN,
                        why: format!("{arn:?} is not an SQS queue ARN"),
                    }
                })?),
            },
            max_receive_count,
            dlq_name,
            worker_concurrency,
            capacity_stated: optional(env::WORKER_PACE).as_deref() == Some("stated"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn reads_every_variable() {
        let c = Config::from_lookup(env(&[
            ("IMAGE_BUCKET", "b"),
            ("IMAGE_PREFIX", "11/"),
            ("MODEL_ID", "amazon.titan-image-generator-v1"),
            ("MODEL_REGION", "us-west-2"),
        ]))
        .unwrap();
        assert_eq!(c.bucket, "b");
        assert_eq!(c.prefix, "11");
        assert_eq!(c.model_region, "us-west-2");
    }

    #[test]
    fn model_region_defaults_to_the_default_models_region() {
        let c = Config::from_lookup(env(&[
            ("IMAGE_BUCKET", "b"),
            ("IMAGE_PREFIX", "p"),
            ("MODEL_ID", "stability.stable-image-core-v1:1"),
        ]))
        .unwrap();
        assert_eq!(c.model_region, "us-west-2");
        assert_eq!(c.family, Family::Stability);
        assert_eq!(c.prompt_rule, PromptRule::STABILITY);
    }

    #[test]
    fn a_model_of_no_known_family_fails_at_start_up() {
        let e = Config::from_lookup(env(&[
            ("IMAGE_BUCKET", "b"),
            ("IMAGE_PREFIX", "p"),
            ("MODEL_ID", "anthropic.claude-3-haiku-20240307-v1:0"),
        ]))
        .unwrap_err();
        assert!(matches!(
            e,
            ConfigError::Invalid {
                name: "MODEL_ID",
                ..
            }
        ));
        assert!(e.to_string().contains("no known model family"), "{e}");
    }

    #[test]
    fn the_queue_and_its_receive_count_are_read_when_set() {
        let base = [
            ("IMAGE_BUCKET", "b"),
            ("IMAGE_PREFIX", "p"),
            ("MODEL_ID", "stability.stable-image-core-v1:1"),
        ];
        let c = Config::from_lookup(env(&base)).unwrap();
        assert_eq!((c.queue_url, c.max_receive_count), (None, None));
        let mut more = base.to_vec();
        more.extend([
            ("QUEUE_ARN", "arn:aws:sqs:eu-west-1:1:q"),
            ("MAX_RECEIVE_COUNT", "3"),
            ("DLQ_NAME", "q-dlq"),
            ("WORKER_CONCURRENCY", "4"),
        ]);
        let c = Config::from_lookup(env(&more)).unwrap();
        assert_eq!(
            c.queue_url.as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/1/q")
        );
        assert_eq!(c.max_receive_count, Some(3));
        assert_eq!(c.dlq_name.as_deref(), Some("q-dlq"));
        assert_eq!(c.worker_concurrency, Some(4));
        for (name, bad) in [
            ("WORKER_CONCURRENCY", "0"),
            ("DLQ_NAME", "arn:aws:sqs:eu-west-1:1:q-dlq"),
        ] {
            let mut bad_env = base.to_vec();
            bad_env.push((name, bad));
            assert!(
                matches!(Config::from_lookup(env(&bad_env)), Err(ConfigError::Invalid { name: n, .. }) if n == name),
                "{name}={bad}"
            );
        }
        let mut bad = base.to_vec();
        bad.push(("MAX_RECEIVE_COUNT", "0"));
        assert!(matches!(
            Config::from_lookup(env(&bad)),
            Err(ConfigError::Invalid {
                name: "MAX_RECEIVE_COUNT",
                ..
            })
        ));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let e = Config::from_lookup(env(&[("IMAGE_BUCKET", "b"), ("MODEL_ID", "stability.x")]))
            .unwrap_err();
        assert_eq!(e, ConfigError::Missing("IMAGE_PREFIX"));
        assert!(e.to_string().contains("IMAGE_PREFIX"));
        let e = Config::from_lookup(env(&[
            ("IMAGE_BUCKET", " "),
            ("IMAGE_PREFIX", "p"),
            ("MODEL_ID", "stability.x"),
        ]))
        .unwrap_err();
        assert_eq!(e, ConfigError::Missing("IMAGE_BUCKET"));
    }
}

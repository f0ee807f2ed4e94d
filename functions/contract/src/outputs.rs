//! The deployed stack's outputs (`provisioner outputs --json`), by name:
//! declared by the provisioner, read by `local`, `verify` and
//! `couch-client --stack`. A misspelt output is a compile error.

/// One output of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Output {
    QueueUrl,
    QueueArn,
    DlqUrl,
    DlqArn,
    TopicArn,
    AlarmName,
    AlarmArn,
    ImagesBucket,
    ImagesPrefix,
    ModelId,
    ModelRegion,
    /// The synchronous route's invoke URL (ends in `/image_generator`).
    ApiUrl,
    /// The asynchronous route's (ends in `/images`).
    ImagesUrl,
    /// `none`, `iam` or `jwt`.
    ApiAuth,
    WorkerFunctionName,
    HttpFunctionName,
    WorkerRoleArn,
    HttpRoleArn,
    /// Only with `client:`.
    ClientRoleArn,
}

impl Output {
    /// Every output, in the order `outputs` prints them.
    pub const ALL: [Output; 19] = [
        Output::QueueUrl,
        Output::QueueArn,
        Output::DlqUrl,
        Output::DlqArn,
        Output::TopicArn,
        Output::AlarmName,
        Output::AlarmArn,
        Output::ImagesBucket,
        Output::ImagesPrefix,
        Output::ModelId,
        Output::ModelRegion,
        Output::ApiUrl,
        Output::ImagesUrl,
        Output::ApiAuth,
        Output::WorkerFunctionName,
        Output::HttpFunctionName,
        Output::WorkerRoleArn,
        Output::HttpRoleArn,
        Output::ClientRoleArn,
    ];

    /// Its key in `outputs --json`.
    pub const fn name(self) -> &'static str {
        match self {
            Output::QueueUrl => "queue_url",
            Output::QueueArn => "queue_arn",
            Output::DlqUrl => "dlq_url",
            Output::DlqArn => "dlq_arn",
            Output::TopicArn => "topic_arn",
            Output::AlarmName => "alarm_name",
            Output::AlarmArn => "alarm_arn",
            Output::ImagesBucket => "images_bucket",
            Output::ImagesPrefix => "images_prefix",
            Output::ModelId => "model_id",
            Output::ModelRegion => "model_region",
            Output::ApiUrl => "api_url",
            Output::ImagesUrl => "images_url",
            Output::ApiAuth => "api_auth",
            Output::WorkerFunctionName => "worker_function_name",
            Output::HttpFunctionName => "http_function_name",
            Output::WorkerRoleArn => "worker_role_arn",
            Output::HttpRoleArn => "http_role_arn",
            Output::ClientRoleArn => "client_role_arn",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_has_its_own_snake_case_name() {
        let names: std::collections::BTreeSet<&str> =
            Output::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), Output::ALL.len());
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
    }
}

//! The fixture shared by the provisioner's tests against moto: a fresh stack
//! file, its images bucket, stand-in zips, and the binary configured for the
//! emulator.
#![allow(dead_code)] // each test binary uses a part

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use aws_sdk_sqs::types::QueueAttributeName;
use provisioner::artifacts::Artifacts;
use provisioner::aws::Aws;
use provisioner::commands::Session;
use provisioner::declare;
use provisioner::engine::plan::Mode;
use provisioner::engine::{Action, Plan};
use provisioner::stack::{self, Stack};

pub const REGION: &str = "eu-west-1";
/// The stack lock's lease for the binary in tests (`COUCH_LOCK_LEASE_SECONDS`).
/// Long enough that a holder's renewals (every quarter lease) get through
/// moto, which serves one request at a time, while two runs keep it busy.
pub const LOCK_LEASE_SECONDS: u64 = 5;

pub struct Fixture {
    pub name: String,
    pub file: PathBuf,
    /// Stand-ins for the function zips (`--artifacts`).
    pub artifacts: PathBuf,
    pub endpoint: String,
    pub conf: aws_types::SdkConfig,
    /// Bedrock: the model stand-in, whose control plane `plan` asks about the
    /// declared model (`AWS_ENDPOINT_URL_BEDROCK` for the binary).
    pub bedrock: testkit::bedrock::FakeBedrock,
}

/// Everything the stack declares, in declaration order.
pub const ALL: [&str; 31] = [
    declare::BUCKET,
    declare::MODEL,
    declare::DLQ,
    declare::QUEUE,
    declare::TOPIC,
    declare::SUBSCRIPTION,
    declare::ALARM,
    declare::WORKER_LOGS,
    declare::WORKER_ROLE,
    declare::WORKER,
    declare::WORKER_ALIAS,
    declare::TRIGGER,
    declare::HTTP_LOGS,
    declare::HTTP_ROLE,
    declare::HTTP,
    declare::HTTP_ALIAS,
    declare::API,
    declare::API_PERMISSION,
    declare::SUBMIT_PERMISSION,
    declare::STATUS_PERMISSION,
    declare::PAGE_PERMISSION,
    declare::DLQ_ALARM,
    declare::FAILED_IMAGES_ALARM,
    declare::WORKER_ERRORS_ALARM,
    declare::WORKER_THROTTLES_ALARM,
    declare::HTTP_ERRORS_ALARM,
    declare::HTTP_THROTTLES_ALARM,
    declare::MODEL_THROTTLES_ALARM,
    declare::API_5XX_ALARM,
    declare::DASHBOARD,
    declare::BOUNDARY,
];
/// How many resources the stack manages (all but the referenced bucket and model).
pub const MANAGED: usize = ALL.len() - 2;

pub fn yaml(name: &str, bucket: &str, threshold: u32, email: &str) -> String {
    format!(
        "name: {name}\nregion: {REGION}\nimages: {{ bucket: {bucket}, prefix: \"11\" }}\nqueue: {{ visibility_timeout_seconds: 180, max_receive_count: 3 }}\nalarm: {{ threshold_seconds: {threshold}, email: {email} }}\ntags: {{ team: couch-explorers }}\n"
    )
}

impl Fixture {
    /// A fresh stack name, its images bucket created, its stack file written.
    pub async fn new(prefix: &str) -> Fixture {
        Fixture::with_endpoint(prefix, testkit::moto_endpoint()).await
    }

    /// The same, with every AWS call going to `endpoint`.
    pub async fn with_endpoint(prefix: &str, endpoint: &str) -> Fixture {
        // Every apply health-checks new versions: the emulator runs these.
        testkit::function_builds();
        let name = testkit::unique(prefix);
        let conf = testkit::sdk_config(endpoint, REGION);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&conf)
                .force_path_style(true)
                .build(),
        );
        testkit::create_bucket(&s3, &format!("{name}-images")).await;
        let dir = std::env::temp_dir().join("couch-provisioner-tests");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join(format!("{name}.yaml"));
        let artifacts = testkit::zips::write_function_zips(&dir.join(format!("{name}-zips")), "v1");
        let f = Fixture {
            name,
            file,
            artifacts,
            endpoint: endpoint.to_owned(),
            conf,
            bedrock: testkit::bedrock::FakeBedrock::start_detached(Default::default()),
        };
        f.write(120, "team@example.com");
        f
    }

    pub fn write(&self, threshold: u32, email: &str) {
        std::fs::write(
            &self.file,
            yaml(
                &self.name,
                &format!("{}-images", self.name),
                threshold,
                email,
            ),
        )
        .expect("write stack file");
    }

    /// Adds lines to the stack file (a section it does not have yet).
    pub fn append_yaml(&self, extra: &str) {
        let text = std::fs::read_to_string(&self.file).expect("read stack file");
        std::fs::write(&self.file, format!("{text}{extra}\n")).expect("write stack file");
    }

    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.conf)
    }

    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.conf)
    }

    /// A role's inline policy as IAM returns it, parsed.
    pub async fn role_policy(&self, role: &str) -> serde_json::Value {
        let out = self
            .iam()
            .get_role_policy()
            .role_name(role)
            .policy_name(provisioner::aws::roles::POLICY_NAME)
            .send()
            .await
            .unwrap();
        provisioner::aws::policies::parse_document(&out.policy_document)
    }

    /// The HTTP API's routes and their keys, sorted.
    pub async fn routes(
        &self,
        api_id: &str,
    ) -> (Vec<aws_sdk_apigatewayv2::types::Route>, Vec<String>) {
        let routes = self
            .apigw()
            .get_routes()
            .api_id(api_id)
            .send()
            .await
            .expect("GetRoutes")
            .items()
            .to_vec();
        let mut keys: Vec<String> = routes
            .iter()
            .filter_map(|r| r.route_key().map(str::to_owned))
            .collect();
        keys.sort_unstable();
        (routes, keys)
    }

    pub fn apigw(&self) -> aws_sdk_apigatewayv2::Client {
        aws_sdk_apigatewayv2::Client::new(&self.conf)
    }

    pub fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        aws_sdk_cloudwatchlogs::Client::new(&self.conf)
    }

    /// The plan's one change, with its changed field paths. A function's
    /// `live` alias moving to the version that change publishes is part of it.
    pub async fn only_change(&self) -> (String, Action, Vec<String>) {
        let plan = self.plan().await;
        let follows_a_function = |c: &&provisioner::engine::Change| {
            c.kind == "lambda-alias"
                && c.fields.len() == 1
                && c.fields[0].path == "function_version"
                && c.fields[0].after.is_none()
        };
        let changing: Vec<_> = plan
            .changes
            .iter()
            .filter(|c| c.action.mutates() && !follows_a_function(c))
            .collect();
        assert_eq!(changing.len(), 1, "{:#?}", changing);
        let c = changing[0];
        (
            c.address.clone(),
            c.action,
            c.fields.iter().map(|f| f.path.clone()).collect(),
        )
    }

    /// An S3 client for the emulator (path-style, as emulators serve buckets).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.conf)
                .force_path_style(true)
                .build(),
        )
    }

    pub fn stack(&self) -> Stack {
        stack::load(&self.file).expect("valid stack")
    }

    /// The provisioner's clients for the emulator, Bedrock's at the stand-in.
    pub fn aws(&self) -> Aws {
        Aws::from_conf(&self.conf)
            .with_bedrock_endpoint(&self.conf, &self.bedrock.endpoint)
            .without_host_prefixes(&self.conf)
    }

    pub fn session(&self) -> Session {
        Session::new(
            self.stack(),
            &Artifacts::load(&self.artifacts),
            Arc::new(self.aws()),
        )
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.conf)
    }

    /// Runs the real binary against the emulator.
    /// The real binary, configured for the emulator.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_provisioner"));
        cmd.args(args)
            .arg("--stack")
            .arg(&self.file)
            .arg("--artifacts")
            .arg(&self.artifacts)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
            .env("AWS_ENDPOINT_URL_BEDROCK", &self.bedrock.endpoint)
            // A SIGKILLed run's stack lock lapses in seconds, not a minute.
            .env("COUCH_LOCK_LEASE_SECONDS", LOCK_LEASE_SECONDS.to_string())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env_remove("CI")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env_remove("GITHUB_ACTIONS")
            .stdin(Stdio::null());
        cmd
    }

    /// `provisioner bootstrap` for the repository `o/r`, approved: the CI
    /// roles and both permissions boundaries (a preview needs its own).
    pub fn bootstrap(&self) -> String {
        self.run_ok(&[
            "bootstrap",
            "--github-repo",
            "o/r",
            "--yes",
            "--approve-broadening",
        ])
    }

    /// Runs the binary, requires success, returns its standard output.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_ok(&out);
        stdout(&out)
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run provisioner")
    }

    pub async fn plan(&self) -> Plan {
        self.session()
            .plan(Mode::Apply, false)
            .await
            .expect("plan")
            .0
    }

    pub async fn queue_attr(&self, queue: &str, attr: QueueAttributeName) -> String {
        let url = self.queue_url(queue).await;
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(attr.clone())
            .send()
            .await
            .unwrap();
        out.attributes
            .unwrap_or_default()
            .get(&attr)
            .cloned()
            .unwrap_or_default()
    }

    pub async fn queue_tags(&self, url: &str) -> std::collections::HashMap<String, String> {
        self.sqs()
            .list_queue_tags()
            .queue_url(url)
            .send()
            .await
            .unwrap()
            .tags
            .unwrap_or_default()
    }

    /// Another client changes the prompts queue's visibility timeout.
    pub async fn drift_visibility_timeout(&self, seconds: u32) {
        let sqs = self.sqs();
        let name = self.stack().queue_name();
        let url = sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string())
            .send()
            .await
            .unwrap();
    }

    /// Attribute `attr` of the deployed resource at `address`, read live.
    pub async fn live_attr(&self, address: &str, attr: &str) -> String {
        self.session()
            .read()
            .await
            .expect("read the live state")
            .attr(address, attr)
            .unwrap_or_else(|| panic!("{address} has no {attr}: not deployed?"))
    }

    /// The subscriptions of the stack's topic, read with the SDK directly.
    pub async fn subscriptions(&self) -> Vec<aws_sdk_sns::types::Subscription> {
        let topic_arn = self.live_attr(declare::TOPIC, "arn").await;
        aws_sdk_sns::Client::new(&self.conf)
            .list_subscriptions_by_topic()
            .topic_arn(&topic_arn)
            .send()
            .await
            .unwrap()
            .subscriptions
            .unwrap_or_default()
    }

    /// Every topic ARN in the account (one page: tests make few).
    pub async fn topic_arns(&self) -> Vec<String> {
        aws_sdk_sns::Client::new(&self.conf)
            .list_topics()
            .send()
            .await
            .unwrap()
            .topics()
            .iter()
            .filter_map(|t| t.topic_arn().map(str::to_owned))
            .collect()
    }

    /// The URL of queue `name`.
    pub async fn queue_url(&self, name: &str) -> String {
        self.sqs()
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .expect("queue exists")
            .queue_url
            .unwrap()
    }

    pub async fn queues(&self) -> Vec<String> {
        self.sqs()
            .list_queues()
            .queue_name_prefix(&self.name)
            .send()
            .await
            .unwrap()
            .queue_urls
            .unwrap_or_default()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

pub fn actions(plan: &Plan) -> Vec<(String, Action)> {
    plan.changes
        .iter()
        .map(|c| (c.address.clone(), c.action))
        .collect()
}

pub fn changing(plan: &Plan) -> Vec<(String, Action)> {
    actions(plan)
        .into_iter()
        .filter(|(_, a)| a.mutates())
        .collect()
}

/// How many of each kind of thing exist for a stack, read with the SDK
/// directly: what "no duplicates" and "nothing left" are checked against.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inventory {
    pub queues: usize,
    pub topics: usize,
    pub subscriptions: usize,
    pub alarms: usize,
    pub log_groups: usize,
    pub roles: usize,
    pub functions: usize,
    pub event_source_mappings: usize,
    pub apis: usize,
}

impl Fixture {
    pub async fn inventory(&self) -> Inventory {
        let name = &self.name;
        let sns = aws_sdk_sns::Client::new(&self.conf);
        let topics: Vec<String> = self
            .topic_arns()
            .await
            .into_iter()
            .filter(|a| {
                a.rsplit(':')
                    .next()
                    .is_some_and(|n| n.starts_with(name.as_str()))
            })
            .collect();
        let mut subscriptions = 0;
        for t in &topics {
            subscriptions += sns
                .list_subscriptions_by_topic()
                .topic_arn(t)
                .send()
                .await
                .unwrap()
                .subscriptions()
                .len();
        }
        let alarms = aws_sdk_cloudwatch::Client::new(&self.conf)
            .describe_alarms()
            .alarm_name_prefix(name)
            .send()
            .await
            .unwrap()
            .metric_alarms()
            .len();
        let log_groups = self
            .logs()
            .describe_log_groups()
            .log_group_name_prefix(format!("/aws/lambda/{name}-"))
            .send()
            .await
            .unwrap()
            .log_groups()
            .len();
        let roles = self
            .iam()
            .list_roles()
            .send()
            .await
            .unwrap()
            .roles()
            .iter()
            .filter(|r| r.role_name().starts_with(&format!("{name}-")))
            .count();
        let functions = self
            .lambda()
            .list_functions()
            .send()
            .await
            .unwrap()
            .functions()
            .iter()
            .filter(|f| {
                f.function_name()
                    .is_some_and(|n| n.starts_with(&format!("{name}-")))
            })
            .count();
        let event_source_mappings = self
            .lambda()
            .list_event_source_mappings()
            .send()
            .await
            .unwrap()
            .event_source_mappings()
            .iter()
            .filter(|m| {
                m.event_source_arn()
                    .is_some_and(|a| a.ends_with(&format!(":{name}-prompts")))
            })
            .count();
        let apis = self
            .apigw()
            .get_apis()
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .filter(|a| a.name() == Some(format!("{name}-api").as_str()))
            .count();
        Inventory {
            queues: self.queues().await.len(),
            topics: topics.len(),
            subscriptions,
            alarms,
            log_groups,
            roles,
            functions,
            event_source_mappings,
            apis,
        }
    }
}

/// What the stack deploys: one of each, two queues, two of each per function.
pub const DEPLOYED: Inventory = Inventory {
    queues: 2,
    topics: 1,
    subscriptions: 1,
    alarms: 9,
    log_groups: 2,
    roles: 2,
    functions: 2,
    event_source_mappings: 1,
    apis: 1,
};

/// One test per `name = n`, each running the test file's `async fn lane(n)`
/// on its own multi-thread runtime: seeds split into lanes that run in
/// parallel (their time is mostly waiting on the emulator and back-offs).
#[macro_export]
macro_rules! lanes {
    ($($name:ident = $lane:expr),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            lane($lane).await;
        }
    )*};
}

/// SDK configuration for the emulator with these keys (an IAM identity
/// the tests made, for runs under IAM enforcement).
pub fn with_keys(
    endpoint: &str,
    id: &str,
    secret: &str,
    token: Option<&str>,
) -> aws_types::SdkConfig {
    aws_types::SdkConfig::builder()
        .http_client(couch_https::client())
        .region(aws_types::region::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
            aws_sdk_sts::config::Credentials::new(
                id,
                secret,
                token.map(str::to_owned),
                None,
                "tests",
            ),
        ))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

/// An IAM user with access keys and one inline policy: `(id, secret)`.
pub async fn user_with_keys(
    iam: &aws_sdk_iam::Client,
    name: &str,
    policy: &str,
) -> (String, String) {
    iam.create_user().user_name(name).send().await.unwrap();
    iam.put_user_policy()
        .user_name(name)
        .policy_name("test")
        .policy_document(policy)
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    (key.access_key_id, key.secret_access_key)
}

pub fn denied<T, E: std::fmt::Debug>(what: &str, r: Result<T, E>) {
    match r {
        Ok(_) => panic!("{what} was allowed"),
        Err(e) => {
            let text = format!("{e:?}");
            assert!(
                text.contains("AccessDenied") || text.contains("not authorized"),
                "{what}: not an access denial: {text}"
            );
        }
    }
}

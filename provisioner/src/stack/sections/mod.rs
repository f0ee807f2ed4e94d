//! The stack file's sections, one file each: its raw form as written (with
//! its defaults), its conversion into the typed section ([`Section`]), and
//! its own limits (`check`). The table at the bottom (`sections!`) is the
//! one list of them: a row is a section, and it makes [`Stack`]'s field,
//! [`KEYS`], [`Raws`] (how each is read, with its default, and converted)
//! and [`check_all`]. `validate.rs` holds the name, the Region and the
//! rules that span sections. A new section is its file and its row.

pub mod alarm;
pub mod alarms;
pub mod client;
pub mod deploy;
pub mod http;
pub mod images;
pub mod logs;
pub mod model;
pub mod queue;
pub mod tags;
pub mod worker;

pub(super) use super::parse::closed;
pub(super) use super::validate::{check_period, check_prefix, is_email, is_region, range};

use std::collections::BTreeMap;

use super::parse::Reader;
use super::{Alarm, Alarms, Client, Deploy, Http, Images, Logs, Model, Queue, Worker};

/// What converting a section may need, and where it records what it finds.
pub struct Converting<'a> {
    /// The stack's name (the `--name` flag's when given).
    pub name: &'a str,
    /// A preview of the file's stack (`--name` other than the file's own).
    pub preview: bool,
    /// Problems found while converting (a word outside a closed set, a key
    /// read only with another), by path.
    pub problems: &'a mut Vec<(String, String)>,
}

/// A stack file's section: its form as written, turned into the typed
/// section of [`Stack`].
pub trait Section: serde::de::DeserializeOwned {
    type Typed;
    /// Stands in for the section when it is absent (for an optional
    /// section: its defaults) or wrong (so the others are still checked).
    fn placeholder() -> Self;
    /// The typed section.
    fn typed(self, c: &mut Converting<'_>) -> Self::Typed;
}

/// A section without which the file is refused.
fn required<T>(_name_flag: Option<&str>) -> Option<fn() -> T> {
    None
}
/// A section whose absence means its defaults.
fn default<T: Section>(_name_flag: Option<&str>) -> Option<fn() -> T> {
    Some(T::placeholder)
}

/// Makes, from one row per section (`key: raw type => typed type = absent,
/// check;`), the [`Stack`] itself, the keys, the reading and conversion of
/// every section and the call of every check. `name` and `region` come
/// first, read by hand (`--name`, the default Region).
macro_rules! sections {
    ($($(#[$doc:meta])* $key:ident: $raw:ty => $typed:ty = $absent:ident, $check:path;)*) => {
        /// A whole deployment, as declared in `stacks/<name>.yaml`.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Stack {
            /// `[a-z0-9-]`, 3..=24 chars; prefixes every physical name.
            pub name: String,
            /// The file's own name when this stack was made from it with
            /// another name (`--name`, as the infrastructure workflow names
            /// pull requests' stacks): a **preview**. Its pictures live apart
            /// ([`super::preview_prefix`]), it declares no client identity,
            /// and its roles are bounded by the file's preview boundary
            /// (made by `bootstrap`).
            pub preview_of: Option<String>,
            /// Where the infrastructure lives (`AWS_REGION` overrides it at run time).
            pub region: String,
            $($(#[$doc])* pub $key: $typed,)*
        }

        /// Every top-level key a stack file may have, in the order they are read.
        pub const KEYS: &[&str] = &["name", "region", $(stringify!($key)),*];

        /// Every section as written (`None`: wrong, with its problem recorded).
        pub struct Raws {
            pub name: Option<String>,
            pub region: Option<String>,
            $(pub $key: Option<$raw>,)*
        }

        impl Raws {
            /// Reads each section, with its default when absent.
            pub(super) fn read(
                r: &mut Reader<'_>,
                root: &serde_yaml::Mapping,
                name_flag: Option<&str>,
            ) -> Raws {
                Raws {
                    // Required, unless `--name` gives it.
                    name: r.section(root, "name", name_flag.map(|_| String::new as fn() -> String)),
                    region: r.section(root, "region", Some(|| DEFAULT_REGION.to_owned())),
                    $($key: r.section(root, stringify!($key), $absent(name_flag)),)*
                }
            }

            /// The sections that failed: each is replaced by its
            /// placeholder so the others are still checked, and problems
            /// about it are dropped.
            pub(super) fn failed(&self) -> Vec<&'static str> {
                [
                    ("name", self.name.is_none()),
                    ("region", self.region.is_none()),
                    $((stringify!($key), self.$key.is_none())),*
                ]
                .into_iter()
                .filter_map(|(k, bad)| bad.then_some(k))
                .collect()
            }

            /// The typed stack, named `name` (a preview when `preview_of`):
            /// every section converted, problems found doing so in `problems`.
            pub(super) fn typed(
                self,
                name: String,
                preview_of: Option<String>,
                problems: &mut Vec<(String, String)>,
            ) -> Stack {
                let mut c = Converting {
                    name: &name,
                    preview: preview_of.is_some(),
                    problems,
                };
                $(let $key = self.$key.unwrap_or_else(<$raw as Section>::placeholder).typed(&mut c);)*
                Stack {
                    region: self.region.unwrap_or_else(|| DEFAULT_REGION.to_owned()),
                    name,
                    preview_of,
                    $($key,)*
                }
            }
        }

        /// Every section's own limits, in the table's order.
        pub fn check_all(s: &Stack, out: &mut Vec<(String, String)>) {
            $($check(s, out);)*
        }
    };
}

/// Where the infrastructure lives unless the file says otherwise.
pub const DEFAULT_REGION: &str = "eu-west-1";

sections! {
    /// The images bucket and the prefix everything is stored under
    /// (referenced, never managed).
    images: images::Raw => Images = required, images::check;
    /// The Bedrock model the worker calls, and its capacity.
    model: model::Raw => Model = default, model::check;
    /// The prompts queue and its dead-letter queue.
    queue: queue::Raw => Queue = default, queue::check;
    /// The worker function and its SQS trigger.
    worker: worker::Raw => Worker = default, worker::check;
    /// The HTTP function and its API: size, throttle, authorization.
    http: http::Raw => Http = default, http::check;
    /// The prompt-age alarm and the address it e-mails.
    alarm: alarm::Raw => Alarm = required, alarm::check;
    /// The loss-and-failure alarms' thresholds.
    alarms: alarms::Raw => Alarms = default, alarms::check;
    /// The functions' log groups.
    logs: logs::Raw => Logs = default, logs::check;
    /// How a new function version takes traffic.
    deploy: deploy::Raw => Deploy = default, deploy::check;
    /// The identity `couch-client` runs as (`client:`), when declared.
    client: Option<client::Raw> => Option<Client> = default, client::check;
    /// The stack's own tags, added to the ownership tags on every taggable resource.
    tags: tags::Raw => BTreeMap<String, String> = default, tags::check;
}

//! The stack file's sections, one file each: its raw form as written (with
//! its defaults), its conversion into the typed `Stack` section, and its own
//! limits (`check`). The table at the bottom ([`sections!`]) is the one list
//! of them: it makes [`KEYS`], [`Raws`] (how each is read, with its default)
//! and [`check_all`]. `validate.rs` holds the rules that span sections.

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

use super::Stack;
use super::parse::Reader;

/// A section without which the file is refused.
fn required<T>(_name_flag: Option<&str>) -> Option<fn() -> T> {
    None
}
/// A section whose absence means its defaults.
fn default<T: Default>(_name_flag: Option<&str>) -> Option<fn() -> T> {
    Some(T::default)
}
/// The stack's name: required, unless `--name` gives it.
fn file_name(name_flag: Option<&str>) -> Option<fn() -> String> {
    name_flag.map(|_| String::new as fn() -> String)
}
/// The stack's Region: `eu-west-1` unless given.
fn eu_west_1(_name_flag: Option<&str>) -> Option<fn() -> String> {
    Some(|| "eu-west-1".to_owned())
}
/// A scalar checked by `validate.rs` itself.
fn no_check(_: &Stack, _: &mut Vec<(String, String)>) {}

/// Makes, from one row per section (`key: raw type = default, check;`), the
/// keys, the reading of every section and the call of every check.
macro_rules! sections {
    ($($key:ident: $raw:ty = $default:ident, $check:path;)*) => {
        /// Every top-level key a stack file may have, in the order they are read.
        pub const KEYS: &[&str] = &[$(stringify!($key)),*];

        /// Every section as written (`None`: wrong, with its problem recorded).
        pub struct Raws {
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
                    $($key: r.section(root, stringify!($key), $default(name_flag)),)*
                }
            }

            /// The sections that failed: each is replaced by a valid
            /// placeholder so the others are still checked, and problems
            /// about it are dropped.
            pub(super) fn failed(&self) -> Vec<&'static str> {
                [$((stringify!($key), self.$key.is_none())),*]
                    .into_iter()
                    .filter_map(|(k, bad)| bad.then_some(k))
                    .collect()
            }
        }

        /// Every section's own limits, in the table's order.
        pub fn check_all(s: &Stack, out: &mut Vec<(String, String)>) {
            $($check(s, out);)*
        }
    };
}

sections! {
    name: String = file_name, no_check;
    region: String = eu_west_1, no_check;
    images: images::Raw = required, images::check;
    model: model::Raw = default, model::check;
    queue: queue::Raw = default, queue::check;
    worker: worker::Raw = default, worker::check;
    http: http::Raw = default, http::check;
    alarm: alarm::Raw = required, alarm::check;
    alarms: alarms::Raw = default, alarms::check;
    logs: logs::Raw = default, logs::check;
    deploy: deploy::Raw = default, deploy::check;
    client: Option<client::Raw> = default, client::check;
    tags: BTreeMap<String, String> = default, tags::check;
}

//! Running the system locally (issue 9, in progress): the parts of AWS that
//! the emulator does not play. [`trigger`]: the SQS event source mapping.

pub mod trigger;

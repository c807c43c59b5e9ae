//! The operator's offline checks: run beside the service, on its database and object store,
//! never through it. They read through `storage::offline`'s named questions only.

pub mod backup;
pub mod evidence;
pub mod proof;

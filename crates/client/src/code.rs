//! The status code of a failed call, as the SDK's own type.
//!
//! The codes are gRPC's (the server speaks gRPC), but the public API names them with this
//! enum rather than the transport crate's, so an application does not depend on the SDK's
//! choice of gRPC library. [`Code::name`] is the spelling the CLI's JSON errors and the API
//! documentation use.

use std::fmt;

/// The status code of a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// Not an error.
    Ok,
    /// The call was cancelled (by the caller, or by the server's request timeout).
    Cancelled,
    /// An error without a more precise code.
    Unknown,
    /// The request is invalid, whatever the state of the system.
    InvalidArgument,
    /// The call did not finish in time.
    DeadlineExceeded,
    /// A named entity (key, version, alias, policy, grant, rule) does not exist.
    NotFound,
    /// The entity to create exists.
    AlreadyExists,
    /// The caller may not perform the action.
    PermissionDenied,
    /// A rate limit or another bound was reached.
    ResourceExhausted,
    /// The system is not in the state the call needs (a disabled key, a sealed cluster).
    FailedPrecondition,
    /// A concurrent change interfered; the call may be retried.
    Aborted,
    /// A value is outside its valid range.
    OutOfRange,
    /// The server does not implement the call.
    Unimplemented,
    /// A server bug.
    Internal,
    /// The node cannot serve now; another node, or a retry, may.
    Unavailable,
    /// Unrecoverable data loss.
    DataLoss,
    /// The call carries no usable client identity.
    Unauthenticated,
}

impl Code {
    /// The code's name, e.g. `INVALID_ARGUMENT`, as scripts and the API documentation see it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Cancelled => "CANCELLED",
            Self::Unknown => "UNKNOWN",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Aborted => "ABORTED",
            Self::OutOfRange => "OUT_OF_RANGE",
            Self::Unimplemented => "UNIMPLEMENTED",
            Self::Internal => "INTERNAL",
            Self::Unavailable => "UNAVAILABLE",
            Self::DataLoss => "DATA_LOSS",
            Self::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The code of a status the transport produced.
    pub(crate) fn of(code: tonic::Code) -> Self {
        use tonic::Code as T;
        match code {
            T::Ok => Self::Ok,
            T::Cancelled => Self::Cancelled,
            T::Unknown => Self::Unknown,
            T::InvalidArgument => Self::InvalidArgument,
            T::DeadlineExceeded => Self::DeadlineExceeded,
            T::NotFound => Self::NotFound,
            T::AlreadyExists => Self::AlreadyExists,
            T::PermissionDenied => Self::PermissionDenied,
            T::ResourceExhausted => Self::ResourceExhausted,
            T::FailedPrecondition => Self::FailedPrecondition,
            T::Aborted => Self::Aborted,
            T::OutOfRange => Self::OutOfRange,
            T::Unimplemented => Self::Unimplemented,
            T::Internal => Self::Internal,
            T::Unavailable => Self::Unavailable,
            T::DataLoss => Self::DataLoss,
            T::Unauthenticated => Self::Unauthenticated,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transport_code_maps_to_the_same_name() {
        for n in 0..=16 {
            let code = tonic::Code::from_i32(n);
            assert_eq!(Code::of(code).name(), tessera_proto::code_name(code));
        }
    }
}

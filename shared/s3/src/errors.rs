//! Which S3 failures a retry can fix, and messages that name the S3 error code and status.

use std::error::Error as StdError;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// HTTP status of the response behind `err`, when one arrived.
pub(crate) fn status<E>(err: &SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Faults only a change of configuration fixes (permissions, the bucket's name, its KMS key):
/// retrying the same request cannot help, and the data is not to blame either.
pub(crate) fn is_configuration_fault<E>(err: &SdkError<E>) -> bool
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let SdkError::ServiceError(service) = err else {
        return false;
    };
    let code = service.err().code().unwrap_or("");
    service.raw().status().as_u16() == 403
        || matches!(
            code,
            "AccessDenied"
                | "AllAccessDisabled"
                | "AccountProblem"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "NoSuchBucket"
                | "InvalidBucketName"
                | "InvalidObjectState"
        )
        // KMS.DisabledException, KMS.NotFoundException, KMS.KMSInvalidStateException, ...
        || code.starts_with("KMS")
}

/// Whether a retry may succeed, and a message naming the S3 error code, HTTP status and cause.
pub(crate) fn classify<E>(err: &SdkError<E>) -> (bool, String)
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match err {
        // The request could not even be built (e.g. an invalid header value): permanent.
        SdkError::ConstructionFailure(_) => (false, DisplayErrorContext(err).to_string()),
        SdkError::TimeoutError(_) => (true, DisplayErrorContext(err).to_string()),
        // IO, timeouts and unreachable endpoints are transient; a "user" fault (e.g. a malformed
        // endpoint URL) is not.
        SdkError::DispatchFailure(failure) => {
            (!failure.is_user(), DisplayErrorContext(err).to_string())
        }
        SdkError::ServiceError(service) => {
            let e = service.err();
            let status = service.raw().status().as_u16();
            let code = e.code().unwrap_or("no error code");
            let message = e.message().unwrap_or("no message");
            let retryable = status >= 500
                || status == 429
                || matches!(
                    code,
                    "SlowDown"
                        | "Throttling"
                        | "ThrottlingException"
                        | "RequestTimeout"
                        | "RequestTimeTooSkewed"
                        | "InternalError"
                        | "ServiceUnavailable"
                );
            (retryable, format!("{code} (http {status}): {message}"))
        }
        // A response that could not be parsed: transient unless the server said it was our fault.
        _ => {
            let retryable = status(err).is_none_or(|s| !(400..500).contains(&s));
            (retryable, DisplayErrorContext(err).to_string())
        }
    }
}

//! Reads rdkafka's errors into the failure policy's verdicts
//! ([`switchboard_core::failure`]).

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use switchboard_core::failure::{Infra, PublishVerdict, Verdict};

/// Classifies an error from the broker client.
pub fn of_kafka(err: &KafkaError) -> PublishVerdict {
    use RDKafkaErrorCode as C;
    let Some(code) = err.rdkafka_error_code() else {
        return PublishVerdict::Is(match err {
            // The client could not be created or configured.
            KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => Verdict::Wait(Infra::Refused),
            _ => Verdict::Retry,
        });
    };
    PublishVerdict::Is(match code {
        C::MessageSizeTooLarge | C::MessageBatchTooLarge | C::InvalidMessageSize | C::InvalidRecord => {
            return PublishVerdict::TooLarge
        }
        C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::SaslAuthenticationFailed
        | C::Authentication
        | C::SSL
        | C::IllegalSASLState
        | C::UnsupportedSASLMechanism => Verdict::Wait(Infra::Refused),
        // A topic that does not exist (yet): the operator creates it.
        C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition => Verdict::Wait(Infra::Refused),
        C::MessageTimedOut
        | C::AllBrokersDown
        | C::BrokerTransportFailure
        | C::Resolve
        | C::RequestTimedOut
        | C::NetworkException
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::NotCoordinator
        | C::CoordinatorNotAvailable
        | C::CoordinatorLoadInProgress
        | C::BrokerNotAvailable
        | C::ReplicaNotAvailable
        | C::KafkaStorageError
        | C::OperationTimedOut
        | C::QueueFull
        | C::TimedOutQueue
        | C::BrokerDestroy => Verdict::Wait(Infra::Unreachable),
        _ => Verdict::Retry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_the_broker_will_never_take_is_replaced() {
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::MessageBatchTooLarge,
            RDKafkaErrorCode::InvalidRecord,
        ] {
            assert_eq!(of_kafka(&KafkaError::MessageProduction(code)), PublishVerdict::TooLarge, "{code:?}");
        }
    }

    #[test]
    fn broker_outages_and_refused_acls_are_waited_out() {
        let is = |code| of_kafka(&KafkaError::MessageProduction(code));
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::QueueFull,
        ] {
            assert_eq!(is(code), PublishVerdict::Is(Verdict::Wait(Infra::Unreachable)), "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::SaslAuthenticationFailed,
            RDKafkaErrorCode::SSL,
            RDKafkaErrorCode::UnknownTopicOrPartition,
        ] {
            assert_eq!(is(code), PublishVerdict::Is(Verdict::Wait(Infra::Refused)), "{code:?}");
        }
        assert_eq!(is(RDKafkaErrorCode::Fail), PublishVerdict::Is(Verdict::Retry));
        assert_eq!(of_kafka(&KafkaError::Canceled), PublishVerdict::Is(Verdict::Retry));
    }
}

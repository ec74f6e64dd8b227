/** Automatic certificates: the ACME manager (ordering, renewal, storage) and the http-01 answers. */
export { ACME_TLS_ALPN, alpnChallengeFile, CHALLENGE_PREFIX, ChallengeAnswers } from './challenges.js'
export { AcmeManager, backoffMs, orderReason, type StoredCertificate, storedCertificate } from './manager.js'

// Unit tests for driving h2load: its arguments, its summary and per-request log, and the nearest-rank
// percentile. Run with `npm run bench:test`.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { H2LOAD_TLS13_CIPHERS, h2loadArgs, nearestRank, parseH2load, responseTimesUs } from './h2load.js'

describe('h2loadArgs', () => {
  const o = { connections: 10, streams: 10, durationS: 8 }
  it('builds one thread, connections, streams per connection, duration, h2 only and the log', () => {
    assert.deepEqual(h2loadArgs({ ...o, url: 'http://127.0.0.1:1234/' }, '/tmp/x/requests.tsv'), [
      '-t',
      '1',
      '-c',
      '10',
      '-m',
      '10',
      '-D',
      '8',
      '--npn-list=h2',
      '--log-file=/tmp/x/requests.tsv',
      'http://127.0.0.1:1234/',
    ])
  })
  it('offers the TLS 1.3 suites in OpenSSL order over https only', () => {
    const args = h2loadArgs({ ...o, url: 'https://127.0.0.1:1234/' }, 'FILE')
    assert.ok(args.includes(`--tls13-ciphers=${H2LOAD_TLS13_CIPHERS}`))
    assert.equal(args.at(-1), 'https://127.0.0.1:1234/')
    assert.equal(
      h2loadArgs({ ...o, url: 'http://127.0.0.1:1234/' }, 'FILE').some((a) => a.startsWith('--tls13')),
      false,
    )
  })
})

describe('nearestRank', () => {
  it('takes the smallest value with at least p% at or below it', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1)
    assert.equal(nearestRank(sorted, 50), 50)
    assert.equal(nearestRank(sorted, 99), 99)
    assert.equal(nearestRank(sorted, 100), 100)
    assert.equal(nearestRank([7], 50), 7)
    assert.equal(nearestRank([1, 2, 3], 99), 3)
  })
})

// Trimmed from a real run of h2load 1.52 against switchyard-h2c (-c 2 -m 2 -D 2).
const STDOUT = `starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for measurements.
Warm-up started for thread #0.
progress: 50% of clients started
progress: 100% of clients started
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Application protocol: h2c
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.00s, 9372.50 req/s, 1.46MB/s
requests: 18745 total, 18749 started, 18745 done, 18740 succeeded, 5 failed, 2 errored, 1 timeout
status codes: 18744 2xx, 0 3xx, 0 4xx, 3 5xx
traffic: 2.93MB (3068377) total, 671.47KB (687584) headers (space savings 71.79%), 1.79MB (1874600) data
                     min         max         mean         sd        +/- sd
time for request:      131us     18.57ms       421us       535us    92.70%
time for connect:       52us        75us        63us        16us   100.00%
time to 1st byte:    15.68ms     17.58ms     16.63ms      1.34ms   100.00%
req/s           :    4681.75     4690.29     4686.02        6.04   100.00%
`

/** 100 responses taking 1..100 ms, a failed stream, a 502, in the order h2load writes them (by end time). */
const LOG = [
  ...Array.from({ length: 100 }, (_, i) => `1795545877102817\t200\t${(100 - i) * 1_000}`),
  '1795545877102900\t-1\t999999999',
  '1795545877102901\t502\t250',
  '',
].join('\n')

describe('parseH2load', () => {
  it('reads req/s, counts errors and bad statuses, and takes percentiles from the log in ms', () => {
    const r = parseH2load(STDOUT, LOG)
    assert.equal(r.reqPerS, 9372.5)
    assert.equal(r.requests, 18_743) // done − errored
    assert.equal(r.socketErrors, 2) // errored, timeouts included
    assert.equal(r.badStatuses, 3) // failed − errored
    // 101 responses (the failed stream left out): 0.25 ms, then 1..100 ms.
    assert.equal(r.p50Ms, 50)
    assert.equal(r.p99Ms, 99)
  })
  it('accepts h2 over TLS', () => {
    const r = parseH2load(STDOUT.replace('Application protocol: h2c', 'Application protocol: h2'), LOG)
    assert.equal(r.reqPerS, 9372.5)
  })
  it('throws, quoting the output, when the summary is missing', () => {
    assert.throws(
      () => parseH2load('starting benchmark...\nconnect failed', LOG),
      /unexpected h2load output:\nstarting/,
    )
  })
  it('throws when the connections did not speak HTTP/2', () => {
    assert.throws(
      () => parseH2load(STDOUT.replace('Application protocol: h2c', 'Application protocol: http/1.1'), LOG),
      /did not speak HTTP\/2 \(application protocol: http\/1\.1\)/,
    )
    assert.throws(
      () => parseH2load(STDOUT.replace(/^Application protocol: h2c\n/m, ''), LOG),
      /application protocol: none/,
    )
  })
  it('throws when the log holds no response', () => {
    assert.throws(() => parseH2load(STDOUT, '1795545877102900\t-1\t5\n'), /logged no response/)
  })
})

describe('responseTimesUs', () => {
  it('sorts the durations and leaves failed streams out', () => {
    assert.deepEqual([...responseTimesUs('1\t200\t30\n2\t-1\t5\n3\t404\t10\n')], [10, 30])
  })
  it('throws, quoting the line, on a malformed log', () => {
    assert.throws(() => responseTimesUs('1\t200\t30\ngarbage\n'), /line 2 in h2load's log: "garbage"/)
  })
})

// Send events with a published Node SDK to a Headwater daemon; print what the SDK reported.
//
//   node send.mjs <segment|customerio> <host> <writeKey> <count>
//
// Prints one JSON object: {"sent": [{messageId, type, n}], "failed": [...], "errors": [...]}.
// "sent" lists the events whose callback reported success: the test checks each is in the
// log exactly once with its fields intact.
import { Analytics as SegmentAnalytics } from '@segment/analytics-node'
import { Analytics as CustomerioAnalytics } from '@customerio/cdp-analytics-node'

const [sdk, host, writeKey, countText] = process.argv.slice(2)
const count = Number(countText)
const Analytics = sdk === 'segment' ? SegmentAnalytics : CustomerioAnalytics
const analytics = new Analytics({
  writeKey,
  host,
  flushAt: 25,
  maxEventsInBatch: 25,
  flushInterval: 100,
  maxRetries: 2,
})

const sent = []
const failed = []
const errors = []
analytics.on('error', (err) => errors.push(String(err?.code ?? err?.message ?? err)))

const done = []
for (let n = 0; n < count; n++) {
  const userId = `node-user-${n % 7}`
  const properties = { n, sdk, nested: { list: [1, 'two', 3.5], flag: n % 2 === 0 } }
  let settle
  done.push(new Promise((resolve) => (settle = resolve)))
  const callback = (err, ctx) => {
    if (err) failed.push({ n, error: String(err?.message ?? err) })
    else sent.push({ messageId: ctx.event.messageId, type: ctx.event.type, n })
    settle()
  }
  switch (n % 6) {
    case 0: analytics.track({ userId, event: 'Order Completed', properties }, callback); break
    case 1: analytics.identify({ userId, traits: { n, email: `${userId}@example.com` } }, callback); break
    case 2: analytics.page({ userId, name: 'Home', properties }, callback); break
    case 3: analytics.screen({ userId, name: 'Settings', properties }, callback); break
    case 4: analytics.group({ userId, groupId: `org-${n}`, traits: { n } }, callback); break
    default: analytics.alias({ userId, previousId: `anon-${n}` }, callback)
  }
}
await analytics.closeAndFlush({ timeout: 20000 })
let timer
await Promise.race([Promise.all(done), new Promise((r) => (timer = setTimeout(r, 5000)))])
clearTimeout(timer)
console.log(JSON.stringify({ sent, failed, errors }))
process.exit(0)

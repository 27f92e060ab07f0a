// meshguard's ports of Go's readings (strconv, strings.TrimSpace, netip.ParsePrefix,
// k8s.io/apimachinery resource.ParseQuantity) against Go's own answers, recorded by
// scripts/go-readings.ts in test/fixtures/go-readings.json: Istio's injector judges annotation
// values with these functions, so meshguard must read every string the same way.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parseBool } from '../src/mesh/go-parse.js';
import { goTrimSpace, hasControl, parseUint } from '../src/mesh/go-text.js';
import { parsePrefix } from '../src/mesh/netip.js';
import { packageRoot } from '../src/paths.js';
import { compareQuantities, parseQuantity, type Quantity } from '../src/mesh/quantity.js';

interface Reading {
  in: string;
  prefix?: boolean;
  uint16?: boolean;
  uint32?: boolean;
  bool?: boolean;
  quantity?: boolean;
  trim?: string;
  sign?: number;
  cmp?: number;
}

const readings = JSON.parse(
  readFileSync(join(packageRoot, 'test', 'fixtures', 'go-readings.json'), 'utf8'),
) as Reading[];

t.ok(readings.length >= 1500, 'Go answered for every recorded string');

t.test('as Go reads them', async (t) => {
  const wrong: string[] = [];
  let previous: Quantity | undefined;
  for (const r of readings) {
    const s = r.in;
    const say = (what: string, go: unknown, ours: unknown) => {
      if (go !== ours) wrong.push(`${what}(${JSON.stringify(s)}): Go ${String(go)}, meshguard ${String(ours)}`);
    };
    // The Go recorded is the Go of today: its netip.ParsePrefix. What meshguard calls `varies`
    // is an older Go's difference, so today's Go refuses it.
    const prefix = parsePrefix(s, true);
    say('netip.ParsePrefix', r.prefix === true, prefix.kind === 'ok');
    say('strconv.ParseUint(16)', r.uint16 === true, parseUint(s, 16) !== undefined);
    say('strconv.ParseUint(32)', r.uint32 === true, parseUint(s, 32) !== undefined);
    say('strconv.ParseBool', r.bool === true, parseBool(s) !== undefined);
    say('strings.TrimSpace', r.trim ?? s, goTrimSpace(s));
    const q = parseQuantity(s);
    say('resource.ParseQuantity', r.quantity === true, q !== undefined);
    if (q && r.quantity) {
      say('Quantity.Sign', r.sign ?? 0, q.negative ? -1 : q.digits === 0n ? 0 : 1);
      if (previous) say('Quantity.Cmp', r.cmp ?? 0, compareQuantities(q, previous));
      previous = q;
    }
  }
  t.strictSame(wrong, [], `${readings.length} strings read as Go reads them`);
});

t.test('Go releases that read a CIDR differently', async (t) => {
  t.equal(parsePrefix('010.0.0.0/8', true).kind, 'invalid', 'netip refuses leading zeros in an octet');
  t.equal(parsePrefix('010.0.0.0/8', false).kind, 'varies', 'net.ParseIP took them until Go 1.17');
  t.equal(
    parsePrefix('10.0.0.0/08', true).kind,
    'varies',
    'netip took a leading zero in the length until a Go release',
  );
  t.equal(parsePrefix('10.0.0.0/08', false).kind, 'ok', 'net.ParseCIDR takes it');
  t.equal(parsePrefix('10.0.0.0/+8', false).kind, 'invalid', 'net.ParseCIDR takes no sign');
  t.equal(parsePrefix('10.0.0.0/-8', true).kind, 'invalid', 'a negative length, never');
});

t.test('control characters as unicode.IsControl', async (t) => {
  t.ok(hasControl('100m\u0000'));
  t.ok(hasControl('\u007f'));
  t.ok(hasControl('\u0085'));
  t.notOk(hasControl('\u00a0'));
  t.notOk(hasControl('100m'));
});

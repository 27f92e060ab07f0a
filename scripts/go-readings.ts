// Records Go's own answers for the strings meshguard reads as Istio's Go code does
// (test/fixtures/go-readings.json; test/go-readings.test.ts checks the ports against them).
// Needs Go and k8s.io/apimachinery v0.37.2 in the module cache (or the module proxy):
//   node --import tsx scripts/go-readings.ts
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';

const inputs = new Set<string>([
  // Quantities: k8s.io/apimachinery's quirks (a lone sign, ".", "1.G", huge and tiny values).
  ...['100m', '128Mi', '1Gi', '2', '', '0', '-0', '+', '-', '.', '.e-9', '.e-10', '1.G', 'Ki', 'm', '1e3', '1E-3'],
  ...['1e', '1e+', '1e4294967296', '99999999999999999999', '1.5Gi', '8Ei', '16Ei', '9223372036854775807'],
  ...['9223372036854775808', '0.0000000001', '1n', '0.1n', '-1m', '1Ki1', '1k1', '1e-9', '1e-10', '1E', '1Ei'],
  ...['123456789012345678', '1234567890123456789', '1.000000000000000001', '0.5Ki', '.5Ki', '.Ki', '1ee3', '1m5'],
  ...[' 100m', '100m ', '100m\t', '100m\r', '100m\u0000', '1,5', '1_000', '0x10', '１'],
  // Ports and whole numbers.
  ...['65535', '65536', '0065535', '4294967295', '4294967296', '+1', ' 1', '-1', '1.0', '00000000000000000000080'],
  // Booleans.
  ...['true', 'True', 'TRUE', 'tRUE', 't', 'T', '1', 'false', 'F', '0', 'yes', 'on', 'y'],
  // Spaces Go trims (and JavaScript's trim does not, or the reverse).
  ...['\u0085x\u0085', '\ufeffx\ufeff', '\u00a0x\u3000', '\u2028x\u200b', '\v\fx'],
  // Prefixes: where netip.ParsePrefix differs from a naive reading.
  ...[
    '10.0.0.0/8',
    '::/0',
    '010.0.0.0/8',
    '00001::/64',
    '10.0.0.0/08',
    '10.0.0.0/+8',
    '10.0.0.0/-0',
    'fe80::1%eth0/64',
  ],
  ...['::ffff:1.2.3.4/120', '1::2::3/64', '1:2:3:4:5:6:7:8::/64', '1:2:3:4:5:6:1.2.3.4/128', '10.0.0.0/33', '*'],
]);
const sign = ['', '-', '+'];
const numbers = ['0', '1', '10', '0.5', '1.', '.1', '123.456', '007', '999999999999999999', '1000000000000000000000'];
const suffixes = [
  '',
  'm',
  'n',
  'u',
  'k',
  'M',
  'G',
  'T',
  'P',
  'E',
  'Ki',
  'Mi',
  'Gi',
  'Ti',
  'Pi',
  'Ei',
  'e3',
  'e-3',
  'E+2',
  'e-12',
];
for (const s of sign) for (const n of numbers) for (const x of suffixes) inputs.add(`${s}${n}${x}`);
const addresses = [
  '10.0.0.0',
  '255.255.255.255',
  '::',
  '::1',
  'fe80::',
  '1:2:3:4:5:6:7:8',
  '::ffff:1.2.3.4',
  '2001:db8::1',
];
for (const a of addresses)
  for (const b of ['0', '8', '32', '33', '128', '129', '08', '+8', '-0', '']) inputs.add(`${a}/${b}`);
// Random strings over the characters these readers care about (a fixed seed: the file is stable).
const alphabet = [...'0012589.:/+-eEinumkKMGTP \tafF%,x', '\u0085', '\ufeff', '\u00a0'];
let seed = 1;
const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
while (inputs.size < 1600) {
  let s = '';
  for (let i = 1 + Math.floor(random() * 7); i > 0; i--) s += alphabet[Math.floor(random() * alphabet.length)];
  // Go's inf.Dec builds 10^exponent to round a quantity: keep exponents small.
  if (!/[eE][+-]?0*[0-9]{4,}/.test(s)) inputs.add(s);
}

const dir = join(packageRoot, 'scripts', 'go-readings');
const out = execFileSync('go', ['run', '.'], { cwd: dir, input: JSON.stringify([...inputs]), maxBuffer: 1 << 26 });
const answers = JSON.parse(out.toString()) as unknown[];
const text = `[\n${answers.map((a) => JSON.stringify(a)).join(',\n')}\n]\n`;
writeFileSync(join(packageRoot, 'test', 'fixtures', 'go-readings.json'), text);
process.stdout.write(`${answers.length} readings recorded\n`);

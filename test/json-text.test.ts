// jsonString and jsonValue write what JSON.stringify writes, character for character.
import fc from 'fast-check';
import t from 'tap';
import { jsonString, jsonValue } from '../src/json-text.js';

const awkward = [
  '',
  'plain-name',
  'a"b',
  'back\\slash',
  'nl\nx',
  '\t',
  '\u0000',
  '\u001f',
  '\u007f',
  'é ü 日本',
  '\ud83d\ude00',
  'lone\ud800',
  '\udfff',
  '\u2028\u2029',
  '</script>',
];

t.test('strings JSON.stringify would escape or leave alone', async (t) => {
  // Named by position: some of these strings would break the TAP stream as test names.
  awkward.forEach((s, i) => t.equal(jsonString(s), JSON.stringify(s), `awkward string ${i}`));
});

t.test('any string, including lone surrogates', async () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.string({ unit: 'binary' }),
        fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
      ),
      (s) => jsonString(s) === JSON.stringify(s),
    ),
    { numRuns: 2000 },
  );
});

t.test('any value', async () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.boolean()),
      (v) => jsonValue(v) === JSON.stringify(v),
    ),
    { numRuns: 1000 },
  );
});

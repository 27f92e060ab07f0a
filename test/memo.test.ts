import t from 'tap';
import { memoize } from '../src/memo.js';

t.test('memoize: computes each key once, up to its bounds', async (t) => {
  const calls: string[] = [];
  const upper = memoize((k) => (calls.push(k), k.toUpperCase()), 2, 5);
  t.equal(upper('ab'), 'AB');
  t.equal(upper('ab'), 'AB');
  t.strictSame(calls, ['ab'], 'a repeated key is not computed again');
  upper('toolong');
  upper('toolong');
  t.strictSame(calls, ['ab', 'toolong', 'toolong'], 'keys over maxKeyLength are computed every time');
  upper('cd');
  upper('ef'); // the third key: the memo starts over
  upper('ab');
  t.strictSame(calls.slice(3), ['cd', 'ef', 'ab'], 'past its entries the memo starts over');
  let computed = 0;
  const nothing = memoize(() => void computed++, 4);
  nothing('x');
  t.equal(nothing('x'), undefined);
  t.equal(computed, 1, 'undefined is kept like any other result');
});

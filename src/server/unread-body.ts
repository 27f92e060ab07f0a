import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

// A refusal decided from the headers alone (415 for a content type meshguard does not read, 404)
// is ready before the body has arrived. Answered at once, Node closes the connection after the
// answer when the client asked for that (`connection: close`) or when fastify did (413): the
// client, still writing, gets EPIPE or a reset instead of the answer. fastify's own parser reads
// at most the body limit and then answers 413 with `connection: close`; meshguard keeps to that
// bound: a body that fits in the limit is read and discarded before the answer (it would have
// been read to be accepted, too), a larger one is not read at all.

/** The body has neither been read nor fully received: an answer now would race the client's writes. */
function unread(raw: IncomingMessage): boolean {
  // `complete` is unset in app.inject's requests, whose bodies are in memory: reading them is free.
  return raw.complete !== true && raw.readableFlowing === null;
}

/** Reads and discards a body; true when it ended within `limit` bytes. */
function discard(raw: IncomingMessage, limit: number): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = 0;
    const finish = (ended: boolean) => {
      raw.off('data', onData).off('end', onEnd).off('error', onGone).off('close', onGone);
      resolve(ended);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      // Past the limit, the rest is left to Node, which discards it until the connection closes.
      if (seen > limit) finish(false);
    };
    const onEnd = () => finish(true);
    const onGone = () => finish(false);
    raw.on('data', onData).on('end', onEnd).on('error', onGone).on('close', onGone);
  });
}

/**
 * Before a refusal is sent: reads and discards the request's unread body when it fits in `limit`,
 * so the client can read the answer and keep its connection; otherwise asks for the connection to
 * be closed, as fastify does for a body over the limit.
 */
export async function settleUnreadBody(request: FastifyRequest, reply: FastifyReply, limit: number): Promise<void> {
  const raw = request.raw;
  if (!unread(raw)) return;
  const declared = Number(raw.headers['content-length']);
  const ended = declared > limit ? false : await discard(raw, limit);
  if (!ended) reply.header('connection', 'close');
}

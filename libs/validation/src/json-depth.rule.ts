/**
 * How deep JSON may nest where the service takes it from outside (request bodies, published events): far
 * deeper than any body of the API or any event payload needs, and far below the depth at which the recursive
 * walks of a JSON value (`JSON.stringify`, validation, canonical hashing) run out of stack. Without the limit,
 * a body of a few kilobytes (`[[[[…]]]]`) made those walks throw a RangeError: a 500 for a request, and an event
 * that could never be recorded.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether a parsed JSON value nests deeper than `max` levels (a scalar is depth 0, `{}` and `[]` depth 1,
 * `{"a":[]}` depth 2). Walks with its own stack, not by recursion, so any input gets an answer.
 */
export function nestsDeeperThan(value: unknown, max: number = MAX_JSON_DEPTH): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: [object, number][] = [[value, 1]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [node, depth] = item;
    if (depth > max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child as object, depth + 1]);
    }
  }
  return false;
}

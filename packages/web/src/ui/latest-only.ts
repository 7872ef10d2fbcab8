/**
 * Requests whose answers replace what the page shows (a folder's rows, a principal's sessions):
 * only the newest may land. An older one answering late (the user moved on, or a refresh overtook
 * it) would otherwise show one folder's or one principal's data under another's name.
 */
import { useMemo, useRef } from "preact/hooks";

/**
 * A ticket dispenser: `take()` starts a request and returns `isNewest`, true until another
 * request is taken (or `dropAll()` is called, e.g. when the view goes away).
 */
export function useLatestOnly(): { take: () => () => boolean; dropAll: () => void } {
  const newest = useRef(0);
  // One object for the component's life: callers list it in hooks' dependencies.
  return useMemo(
    () => ({
      take: () => {
        const mine = ++newest.current;
        return () => newest.current === mine;
      },
      dropAll: () => {
        newest.current++;
      },
    }),
    [],
  );
}

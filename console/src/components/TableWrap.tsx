import { type ReactNode, useLayoutEffect, useRef, useState } from "react";

/**
 * A `.table-wrap` (its table scrolls sideways inside it) that, while its table is wider than it
 * (on a phone), is a focusable group named `label`: keyboard users can scroll it too.
 */
export function TableWrap({ label, children }: { label: string; children: ReactNode }) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrolls, setScrolls] = useState(false);
  useLayoutEffect(() => {
    const wrap = ref.current;
    if (!wrap) return;
    const check = () => setScrolls(wrap.scrollWidth > wrap.clientWidth + 1);
    check();
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(check);
    observer.observe(wrap);
    if (wrap.firstElementChild) observer.observe(wrap.firstElementChild);
    return () => observer.disconnect();
  }, []);
  return (
    <div ref={ref} className="table-wrap" {...(scrolls ? { role: "group", "aria-label": label, tabIndex: 0 } : {})}>
      {children}
    </div>
  );
}

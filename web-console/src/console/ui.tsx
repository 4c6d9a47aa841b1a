// Small pieces shared by the console pages.
import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { OperatorState, RiskColour, RiskLevel } from '../proto/hotline';
import type { Strings } from './strings';

export function RiskBadge({ risk, colour, t }: { risk: RiskLevel; colour: RiskColour; t: Strings }) {
  return (
    <span class={`risk risk-${colour}`} data-colour={colour} data-risk={risk}>
      <span class="dot" aria-hidden="true" />
      {t.risk} {t.riskLevels[risk]} · {t.colours[colour]}
    </span>
  );
}

export function opStateLabel(state: OperatorState | null | undefined, t: Strings): string {
  if (!state) return t.opStates.offline;
  const label = t.opStates[state.state];
  return state.state === 'break' ? `${label} · ${t.breakReasons[state.reason]}` : label;
}

export function OpStateBadge({ state, t }: { state: OperatorState | null | undefined; t: Strings }) {
  return (
    <span class={`opstate opstate-${state?.state ?? 'offline'}`} data-state={state?.state ?? 'offline'}>
      {opStateLabel(state, t)}
    </span>
  );
}

/** Re-renders every `ms` while `on`. */
export function useTicker(on = true, ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!on) return;
    const id = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(id);
  }, [on, ms]);
  return now;
}

/**
 * A page loaded on first use (its own chunk): the administration and quality screens are not
 * part of what an operator's desk downloads.
 */
export function lazy<P extends object>(load: () => Promise<ComponentType<P>>, loading: string) {
  let cached: ComponentType<P> | null = null;
  return function Lazy(props: P) {
    const [Page, setPage] = useState(() => cached);
    const [failed, setFailed] = useState<string | null>(null);
    useEffect(() => {
      if (Page) return;
      load().then(
        (c) => {
          cached = c;
          setPage(() => c);
        },
        (e) => setFailed(String(e)),
      );
    }, []);
    if (Page) return <Page {...props} />;
    return failed ? (
      <p class="problem" role="alert">
        {failed}
      </p>
    ) : (
      <p role="status">{loading}</p>
    );
  };
}

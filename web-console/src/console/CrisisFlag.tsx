// The one-click crisis flag on the operator's desk: a confirm dialog (optional reason for staff),
// `POST /api/contacts/{id}/crisis`, then what the crisis team is doing, from `incident_changed`
// frames (paging, acknowledged by whom, who joined the conversation).
import { useEffect, useRef, useState } from 'preact/hooks';
import type { CrisisFlagged } from '../proto/hotline';
import { api } from '../shared/api';
import { errorText } from '../shared/errors';
import { timeOfDay } from '../shared/format';
import { useLang } from '../shared/i18n';
import { incidentOf, type Chat, type StaffState } from './staff';
import type { Strings } from './strings';

export function CrisisFlag({
  chat,
  state,
  t,
  names,
}: {
  chat: Chat;
  state: StaffState;
  t: Strings;
  names: Map<number, string>;
}) {
  const lang = useLang();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  // Said in the language of the moment it is shown.
  const [problem, setProblem] = useState<((t: Strings) => string) | null>(null);
  const [flagged, setFlagged] = useState<number | null>(null);
  const dialog = useRef<HTMLDialogElement>(null);
  const button = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);

  const incident = incidentOf(state, chat.id);
  const live = incident && incident.state !== 'resolved' ? incident : null;
  const id = live?.id ?? (incident ? null : flagged);
  const nameOf = (who: number) => names.get(who) ?? `#${who}`;
  const joined = Object.entries(chat.participants)
    .filter(([, mode]) => mode === 'barge' || mode === 'whisper')
    .map(([who]) => nameOf(Number(who)));

  const raise = () => {
    setBusy(true);
    setProblem(null);
    api<CrisisFlagged>('POST', `/api/contacts/${chat.id}/crisis`, reason.trim() ? { reason: reason.trim() } : {})
      .then((r) => {
        setFlagged(r.incident);
        setOpen(false);
        setReason('');
      })
      .catch((e) => setProblem(() => (tr: Strings) => errorText(e, { error: tr.flag.failed })))
      .finally(() => setBusy(false));
  };

  return (
    <section class="crisis-flag" aria-labelledby={`flag-${chat.id}`} data-testid="crisis-flag">
      <h4 id={`flag-${chat.id}`}>{t.flag.title}</h4>
      {id !== null ? (
        <div
          class="crisis-status"
          role="status"
          aria-live="polite"
          data-testid="crisis-status"
          data-state={live?.state ?? 'triggered'}
        >
          <p class="crisis-paged">{t.flag.paged(id)}</p>
          {live?.state === 'acknowledged' && live.acknowledged_by != null ? (
            <p data-testid="crisis-acknowledged">
              ✓ {t.flag.ackBy(nameOf(live.acknowledged_by), timeOfDay(live.acknowledged_at ?? 0, lang))}
            </p>
          ) : (
            <p>
              {t.flag.states.triggered}
              {live ? ` · ${t.flag.level(live.level)}` : ''}
            </p>
          )}
          {joined.length > 0 && <p data-testid="crisis-joined">✓ {t.flag.joined(joined.join('、'))}</p>}
        </div>
      ) : (
        <>
          {incident?.state === 'resolved' && <p class="hint">{t.flag.states.resolved}</p>}
          <p class="hint">{t.flag.hint}</p>
          <button
            type="button"
            class="danger-button crisis-button"
            ref={button}
            data-testid="crisis-raise"
            onClick={() => setOpen(true)}
          >
            {t.flag.raise}
          </button>
        </>
      )}
      <dialog
        ref={dialog}
        class="confirm-dialog"
        aria-labelledby={`flag-${chat.id}-q`}
        data-testid="crisis-dialog"
        onClose={() => {
          setOpen(false);
          button.current?.focus();
        }}
      >
        <form
          method="dialog"
          onSubmit={(e) => {
            e.preventDefault();
            raise();
          }}
        >
          <h3 id={`flag-${chat.id}-q`}>{t.flag.confirmTitle}</h3>
          <p>{t.flag.confirmText}</p>
          <label class="field">
            <span>{t.flag.reason}</span>
            <textarea
              name="reason"
              rows={2}
              maxLength={2000}
              value={reason}
              onInput={(e) => setReason(e.currentTarget.value)}
            />
          </label>
          {problem && (
            <p class="problem" role="alert">
              {problem(t)}
            </p>
          )}
          <div class="form-actions">
            <button type="button" onClick={() => setOpen(false)}>
              {t.cancel}
            </button>
            <button type="submit" class="danger-button" disabled={busy} data-testid="crisis-confirm">
              {t.flag.confirm}
            </button>
          </div>
        </form>
      </dialog>
    </section>
  );
}

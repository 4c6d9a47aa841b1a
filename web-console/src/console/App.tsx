// The staff console shell: sign-in, the forced password change, navigation by role, the one
// staff socket, notices, and the crisis page that rings on every screen. Pages live under hash
// routes: #/desk, #/wallboard, #/crisis/<incident>, #/admin/…
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Me, QueueDefinition, Role, StaffMember } from '../proto/hotline';
import { api } from '../shared/api';
import { errorText, frameErrorText } from '../shared/errors';
import { useStrings } from '../shared/i18n';
import { LangSwitch } from '../shared/LangSwitch';
import type { Colleague } from './ChatView';
import { CrisisDesk } from './Crisis';
import { Desk } from './Desk';
import { paging, unlockSound } from './ring';
import { StaffStore, useStaff, type Notice, type StaffState } from './staff';
import { strings, type Strings } from './strings';
import { lazy } from './ui';
import { Wallboard } from './Wallboard';

const Admin = lazy(() => import('./Admin').then((m) => m.Admin), '…');
const Quality = lazy(() => import('./Quality').then((m) => m.Quality), '…');

type Page = 'desk' | 'wallboard' | 'crisis' | 'quality' | 'mine' | 'admin' | 'password';

function pagesFor(role: Role): Page[] {
  switch (role) {
    case 'operator':
      return ['desk', 'mine'];
    case 'crisis_lead':
      return ['crisis', 'desk', 'wallboard', 'mine'];
    case 'supervisor':
      return ['wallboard', 'crisis', 'quality', 'desk'];
    case 'admin':
      return ['admin', 'wallboard', 'crisis', 'quality'];
  }
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

export function App() {
  const t = useStrings(strings);
  const [me, setMe] = useState<Me | null | undefined>(undefined);

  useEffect(() => {
    api<Me>('GET', '/api/me').then(setMe, () => setMe(null));
  }, []);

  if (me === undefined)
    return (
      <p class="boot" role="status">
        {t.loading}
      </p>
    );
  if (me === null) return <Login t={t} onLogin={setMe} />;
  if (me.must_change_password) {
    return (
      <Frame t={t}>
        <PasswordForm t={t} forced onDone={() => setMe({ ...me, must_change_password: false })} />
      </Frame>
    );
  }
  return <Console t={t} me={me} onSignedOut={() => setMe(null)} />;
}

function Frame({
  t,
  children,
  nav,
}: {
  t: Strings;
  children: preact.ComponentChildren;
  nav?: preact.ComponentChildren;
}) {
  return (
    <div class="console">
      <header class="topbar">
        <h1>{t.appName}</h1>
        {nav}
        <LangSwitch />
      </header>
      <main id="main">{children}</main>
    </div>
  );
}

function Login({ t, onLogin }: { t: Strings; onLogin: (me: Me) => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  return (
    <Frame t={t}>
      <form
        class="card narrow"
        aria-labelledby="login-title"
        onSubmit={(e) => {
          e.preventDefault();
          // A click lets the page make sound: offers and crisis pages ring.
          unlockSound();
          setBusy(true);
          setProblem(null);
          api<Me>('POST', '/api/login', { name: name.trim(), password })
            .then(onLogin)
            .catch((err) => setProblem(errorText(err, { error: t.loginFailed })))
            .finally(() => setBusy(false));
        }}
      >
        <h2 id="login-title">{t.loginTitle}</h2>
        <label class="field">
          <span>{t.accountName}</span>
          <input
            type="text"
            name="name"
            autoComplete="username"
            required
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </label>
        <label class="field">
          <span>{t.password}</span>
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {problem && (
          <p class="problem" role="alert">
            {problem}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {t.login}
        </button>
      </form>
    </Frame>
  );
}

function PasswordForm({ t, forced, onDone }: { t: Strings; forced?: boolean; onDone: () => void }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  return (
    <form
      class="card narrow"
      aria-labelledby="pw-title"
      data-testid="password-form"
      onSubmit={(e) => {
        e.preventDefault();
        setProblem(null);
        if ([...next].length < 10) return setProblem(t.passwordTooShort);
        if (next !== again) return setProblem(t.passwordsDiffer);
        api('POST', '/api/me/password', { current_password: current, new_password: next })
          .then(() => {
            setDone(true);
            setCurrent('');
            setNext('');
            setAgain('');
            onDone();
          })
          .catch((err) => setProblem(errorText(err, t)));
      }}
    >
      <h2 id="pw-title">{t.changePassword}</h2>
      {forced && <p class="note">{t.mustChange}</p>}
      <label class="field">
        <span>{t.currentPassword}</span>
        <input
          type="password"
          name="current"
          autoComplete="current-password"
          required
          value={current}
          onInput={(e) => setCurrent(e.currentTarget.value)}
        />
      </label>
      <label class="field">
        <span>{t.newPassword}</span>
        <input
          type="password"
          name="new"
          autoComplete="new-password"
          required
          minLength={10}
          value={next}
          onInput={(e) => setNext(e.currentTarget.value)}
        />
      </label>
      <label class="field">
        <span>{t.repeatPassword}</span>
        <input
          type="password"
          name="again"
          autoComplete="new-password"
          required
          value={again}
          onInput={(e) => setAgain(e.currentTarget.value)}
        />
      </label>
      {problem && (
        <p class="problem" role="alert">
          {problem}
        </p>
      )}
      {done && <p role="status">{t.passwordChanged}</p>}
      <button type="submit" class="primary">
        {t.changePassword}
      </button>
    </form>
  );
}

function Console({ t, me, onSignedOut }: { t: Strings; me: Me; onSignedOut: () => void }) {
  const store = useMemo(() => new StaffStore(), []);
  const state = useStaff(store);
  const hash = useHash();
  const [queues, setQueues] = useState<QueueDefinition[]>([]);
  const [colleagues, setColleagues] = useState<Colleague[] | null>(null);

  const loadQueues = () => {
    api<QueueDefinition[]>('GET', '/api/queues').then(setQueues, () => undefined);
  };
  useEffect(() => {
    store.onAuthLost = onSignedOut;
    store.start();
    loadQueues();
    // Colleagues, for transfers and for naming people on timelines and in conversations.
    api<StaffMember[]>('GET', '/api/staff').then(
      (list) => setColleagues(list.map((a) => ({ id: a.id, name: a.name, role: a.role }))),
      () => setColleagues(null),
    );
    // Any first click or key lets the page ring (browsers keep pages silent until then).
    const unlock = () => unlockSound();
    window.addEventListener('pointerdown', unlock, { once: true });
    window.addEventListener('keydown', unlock, { once: true });
    return () => {
      store.stop();
      window.removeEventListener('pointerdown', unlock);
      window.removeEventListener('keydown', unlock);
    };
  }, [store]);

  const pages = pagesFor(me.role);
  const [, route = '', sub = '', ...rest] = hash.split('/');
  const page: Page = route === 'password' ? 'password' : pages.includes(route as Page) ? (route as Page) : pages[0];
  const names = new Map<number, string>([
    ...(colleagues ?? []).map((c) => [c.id, c.name] as [number, string]),
    ...(state.floor?.operators ?? []).map((o) => [o.id, o.name] as [number, string]),
  ]);
  // Offers ring on every page: show them wherever the person is.
  const offersElsewhere = page !== 'desk' && state.offers.length > 0 && pages.includes('desk');

  const signOut = () => {
    store.stop();
    api('POST', '/api/logout').finally(onSignedOut);
  };

  const nav = (
    <nav class="mainnav" aria-label={t.appName}>
      {[...pages, 'password' as Page].map((p) => (
        <a key={p} href={`#/${p}`} aria-current={page === p ? 'page' : undefined}>
          {t.nav[p]}
          {p === 'desk' && state.offers.length > 0 ? ` (${state.offers.length})` : ''}
        </a>
      ))}
    </nav>
  );

  return (
    <Frame t={t} nav={nav}>
      <div class="statusbar">
        <span class={`linkstate linkstate-${state.link}`} role="status" data-link={state.link}>
          {t.link[state.link]}
        </span>
        <span class="who">{t.signedInAs(me.display_name, t.roles[me.role])}</span>
        <button type="button" onClick={signOut}>
          {t.logout}
        </button>
      </div>
      {state.replaced && (
        <p class="problem" role="alert">
          {t.replaced}{' '}
          <button type="button" onClick={() => store.start()}>
            {t.reconnect}
          </button>
        </p>
      )}
      <PageBanner store={store} state={state} t={t} />
      <Notices store={store} notices={state.notices} t={t} />
      {offersElsewhere && (
        <p class="offer-banner" role="alert">
          <a href="#/desk">
            {t.incoming} ({state.offers.length})
          </a>
        </p>
      )}
      {page === 'desk' && (
        <Desk store={store} state={state} t={t} me={me} queues={queues} colleagues={colleagues} names={names} />
      )}
      {page === 'wallboard' && (
        <Wallboard store={store} state={state} t={t} queues={queues} colleagues={colleagues} names={names} />
      )}
      {page === 'crisis' && (
        <CrisisDesk
          store={store}
          state={state}
          t={t}
          selected={/^\d+$/.test(sub) ? Number(sub) : null}
          queues={queues}
          colleagues={colleagues}
          names={names}
        />
      )}
      {page === 'admin' && <Admin t={t} section={sub} onQueuesChanged={loadQueues} />}
      {(page === 'quality' || page === 'mine') && (
        <Quality t={t} me={me} mine={page === 'mine'} section={sub} rest={rest} names={names} queues={queues} />
      )}
      {page === 'password' && <PasswordForm t={t} onDone={() => undefined} />}
    </Frame>
  );
}

/** A crisis page rings on every screen (tone and banner) until someone acknowledges it. */
function PageBanner({ store, state, t }: { store: StaffStore; state: StaffState; t: Strings }) {
  const paged = state.paged.map((id) => state.incidents[id]).filter((i) => i && i.state === 'triggered');
  const on = paged.length > 0;
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    paging(on);
  }, [on]);
  useEffect(() => () => paging(false), []);
  if (!on) return null;
  return (
    <section class="page-banner" role="alert" aria-labelledby="page-title" data-testid="page-banner">
      <h2 id="page-title">{t.page.title}</h2>
      {paged.map((i) => (
        <div key={i.id} class="page-item" data-incident={i.id}>
          <p>
            <strong>{t.page.text(i.id, i.contact, i.level)}</strong>
            {i.reason ? ` ${t.page.reason(i.reason)}` : ''}
          </p>
          <div class="page-actions">
            <button
              type="button"
              class="primary"
              data-testid="page-acknowledge"
              onClick={() =>
                store.acknowledge(i.id).then(
                  () => {
                    setProblem(null);
                    location.hash = `#/crisis/${i.id}`;
                  },
                  (e) => setProblem(errorText(e, t)),
                )
              }
            >
              {t.crisis.acknowledge}
            </button>
            <a href={`#/crisis/${i.id}`}>{t.page.open}</a>
          </div>
        </div>
      ))}
      {problem && <p class="problem">{problem}</p>}
    </section>
  );
}

function noticeText(n: Notice, t: Strings): string {
  switch (n.kind) {
    case 'withdrawn':
      return `${t.contact(n.contact)}: ${t.withdrawn[n.reason] ?? n.reason}`;
    case 'released':
      return `${t.contact(n.contact)}: ${t.released[n.reason] ?? n.reason}`;
    case 'completed':
      return t.completed(n.contact);
    case 'shutdown':
      return t.shutdown;
    case 'error':
      return frameErrorText(n.code, n.message, n.errorId, t);
  }
}

function Notices({ store, notices, t }: { store: StaffStore; notices: Notice[]; t: Strings }) {
  const timers = useRef(new Map<number, number>());
  useEffect(() => {
    for (const n of notices) {
      if (timers.current.has(n.id)) continue;
      timers.current.set(
        n.id,
        window.setTimeout(() => store.dismiss(n.id), n.kind === 'error' ? 12_000 : 8_000),
      );
    }
  }, [notices]);
  return (
    <div class="notices" aria-live="polite">
      {notices.map((n) => (
        <p key={n.id} class={`notice ${n.kind === 'error' ? 'problem' : 'note'}`}>
          {noticeText(n, t)}{' '}
          <button type="button" class="link" onClick={() => store.dismiss(n.id)} aria-label={t.close}>
            ×
          </button>
        </p>
      ))}
    </div>
  );
}

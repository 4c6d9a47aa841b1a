// A refused request said in the reader's language. The server's error codes are stable and its
// messages English: a code whose meaning is the whole story is said here; for the others (what
// was invalid, what conflicts) the server's own words follow.
import { ApiError } from './api';
import { getLang, type Lang } from './i18n';

const WHOLE: Record<Lang, Record<string, string>> = {
  'zh-CN': {
    unauthorized: '登录已失效，请重新登录。',
    forbidden: '你的角色不能做这件事。',
    not_found: '找不到它了（可能已被删除）。',
    rate_limited: '操作太频繁，请稍后再试。',
    unavailable: '服务器暂时不可用，请稍后再试。',
    internal: '服务器出错了，请稍后再试或联系管理员。',
  },
  en: {
    unauthorized: 'Your session has ended; please sign in again.',
    forbidden: 'Your role cannot do this.',
    not_found: 'It is no longer there (it may have been deleted).',
    rate_limited: 'Too many attempts; please try again shortly.',
    unavailable: 'The server is unavailable for now; please try again shortly.',
    internal: 'The server failed; please try again or tell an administrator.',
  },
};

const LEAD: Record<Lang, Record<string, string>> = {
  'zh-CN': { invalid: '输入有误：', invalid_fields: '有内容需要修改：', conflict: '与当前状态冲突：' },
  en: {
    invalid: 'Not accepted: ',
    invalid_fields: 'Some fields need changing: ',
    conflict: 'Conflicts with the current state: ',
  },
};

/** `t.error` (the page's "failed:" lead-in), then what went wrong, with the code for support. */
export function errorText(e: unknown, t: { error: string }): string {
  if (!(e instanceof ApiError)) return t.error + String(e);
  const lang = getLang();
  const whole = WHOLE[lang][e.code];
  const text = whole ?? `${LEAD[lang][e.code] ?? ''}${e.message}`;
  const reference = e.errorId ? ` ${e.errorId}` : '';
  return `${t.error}${text} (${e.code}${reference})`;
}

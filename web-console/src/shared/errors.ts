// A refused request said in the reader's language. The server's error codes are stable and its
// messages English: a code whose meaning is the whole story is said here; for the others (what
// was invalid, what conflicts) the server's own words follow. HTTP answers and WebSocket `error`
// frames share the codes; a few only come over the socket.
import { ApiError } from './api';
import { getLang, type Lang } from './i18n';

/** Every code the server (or this console) gives whose meaning is the whole story, in Chinese;
 *  the English below must say each of them too. */
const WHOLE_ZH = {
  unauthorized: '登录已失效，请重新登录。',
  forbidden: '你的角色不能做这件事。',
  not_found: '找不到它了（可能已被删除）。',
  rate_limited: '操作太频繁，请稍后再试。',
  unavailable: '服务器暂时不可用，请稍后再试。',
  internal: '服务器出错了，请稍后再试或联系管理员。',
  not_offered: '这个接入已不再提供给你（可能已超时或被撤回）。',
  not_assigned: '这个接入已不在你名下。',
  not_wrapping: '你已不在整理状态。',
  target_unavailable: '转接对象现在无法接收。',
  wrong_state: '当前状态下不能这样做。',
  unknown_contact: '找不到这个接入（可能已经结束）。',
  unknown_operator: '找不到这位同事（可能已离线）。',
  unknown_queue: '没有这个队列。',
  bad_frame: '控制台与服务器版本不一致，请刷新页面。',
  unknown_type: '控制台与服务器版本不一致，请刷新页面。',
  offline: '未连接到服务器；重新连接后再试。',
  shutting_down: '服务器正在重启，控制台会自动重新连接。',
  ended: '这段对话已经结束，新写的话不会有人看到。',
  queue_in_use: '这个队列里还有接入，或有别的队列溢出到它，现在不能删除。',
  password_change_required: '请先修改密码，再做别的事。',
  method_not_allowed: '服务器不接受这种请求；请刷新页面。',
  unsupported_media_type: '控制台与服务器版本不一致，请刷新页面。',
  upgrade_required: '这个地址只接受实时连接；请刷新页面。',
  not_joined: '还没有进入排队或恢复对话。',
  already_joined: '已经在这段对话里了。',
  duplicate_contact: '这个接入已经存在。',
  replaced: '这段对话已在另一个窗口打开。',
  network: '连不上服务器；请检查网络后再试。',
};

const WHOLE: Record<Lang, Record<keyof typeof WHOLE_ZH, string>> = {
  'zh-CN': WHOLE_ZH,
  en: {
    unauthorized: 'Your session has ended; please sign in again.',
    forbidden: 'Your role cannot do this.',
    not_found: 'It is no longer there (it may have been deleted).',
    rate_limited: 'Too many attempts; please try again shortly.',
    unavailable: 'The server is unavailable for now; please try again shortly.',
    internal: 'The server failed; please try again or tell an administrator.',
    not_offered: 'That contact is no longer offered to you (it may have timed out or been withdrawn).',
    not_assigned: 'That contact is no longer yours.',
    not_wrapping: 'You are no longer in wrap-up.',
    target_unavailable: 'The transfer target cannot take it now.',
    wrong_state: 'Not possible in the current state.',
    unknown_contact: 'That contact is not known (it may have ended).',
    unknown_operator: 'That colleague is not known (they may be offline).',
    unknown_queue: 'There is no such queue.',
    bad_frame: 'The console and the server disagree; please reload the page.',
    unknown_type: 'The console and the server disagree; please reload the page.',
    offline: 'Not connected to the server; try again once reconnected.',
    shutting_down: 'The server is restarting; the console reconnects by itself.',
    ended: 'This conversation has ended; nobody would read a new line.',
    queue_in_use: 'Contacts are still in this queue, or another queue overflows to it: it cannot be deleted now.',
    password_change_required: 'Change your password first.',
    method_not_allowed: 'The server does not take this request; please reload the page.',
    unsupported_media_type: 'The console and the server disagree; please reload the page.',
    upgrade_required: 'This address takes live connections only; please reload the page.',
    not_joined: 'Not in a queue or a conversation yet.',
    already_joined: 'Already in this conversation.',
    duplicate_contact: 'That contact already exists.',
    replaced: 'This conversation is open in another window.',
    network: 'The server cannot be reached; check the network and try again.',
  },
};

const LEAD: Record<Lang, Record<string, string>> = {
  'zh-CN': {
    invalid: '输入有误：',
    invalid_fields: '有内容需要修改：',
    conflict: '与当前状态冲突：',
    too_large: '内容太长：',
  },
  en: {
    invalid: 'Not accepted: ',
    invalid_fields: 'Some fields need changing: ',
    conflict: 'Conflicts with the current state: ',
    too_large: 'Too long: ',
  },
};

/** Over the socket, `forbidden` is about a contact rather than a page. */
const FRAME_WHOLE: Record<Lang, Record<string, string>> = {
  'zh-CN': { forbidden: '你不能对这个接入这样做。' },
  en: { forbidden: 'You may not do that with this contact.' },
};

/** `t.error` (the page's "failed:" lead-in), then what went wrong in the reader's language, with
 *  the code (and the server's error id, if any) for support. */
function said(
  code: string,
  message: string,
  errorId: string | null | undefined,
  t: { error: string },
  whole: Record<Lang, Record<string, string>> = WHOLE,
): string {
  const lang = getLang();
  const text =
    whole[lang][code] ?? (WHOLE[lang] as Record<string, string>)[code] ?? `${LEAD[lang][code] ?? ''}${message}`;
  const reference = errorId ? ` ${errorId}` : '';
  return `${t.error}${text} (${code}${reference})`;
}

/** A refused HTTP request (an `ApiError`), or any other failure as it is. */
export function errorText(e: unknown, t: { error: string }): string {
  if (!(e instanceof ApiError)) return t.error + String(e);
  return said(e.code, e.message, e.errorId, t);
}

/** The same for a WebSocket `error` frame. */
export function frameErrorText(
  code: string,
  message: string,
  errorId: string | null | undefined,
  t: { error: string },
): string {
  return said(code, message, errorId, t, FRAME_WHOLE);
}

// The pre-chat topics the caller page offers, and the language names; the console shows the
// same labels. The protocol takes any short code as a topic; an unknown one is shown as is.
import type { Lang } from './i18n';

export const TOPICS: { id: string; zh: string; en: string }[] = [
  { id: 'emotion', zh: '情绪困扰（焦虑、低落、压力）', en: 'Feelings (anxiety, low mood, stress)' },
  { id: 'relationship', zh: '恋爱与人际关系', en: 'Relationships' },
  { id: 'family', zh: '家庭', en: 'Family' },
  { id: 'study', zh: '学业', en: 'Study and school' },
  { id: 'work', zh: '工作与经济', en: 'Work and money' },
  { id: 'health', zh: '身体或心理健康', en: 'Physical or mental health' },
  { id: 'bereavement', zh: '失去亲人', en: 'Loss and grief' },
  { id: 'suicide', zh: '自杀或自伤的想法', en: 'Thoughts of suicide or self-harm' },
  { id: 'other', zh: '其他', en: 'Something else' },
];

export const LANGUAGE_NAMES: Record<string, string> = { zh: '中文', en: 'English' };

export function topicLabel(id: string | null | undefined, lang: Lang): string | null {
  if (!id) return null;
  const topic = TOPICS.find((t) => t.id === id);
  return topic ? (lang === 'zh-CN' ? topic.zh : topic.en) : id;
}

export function languageName(code: string): string {
  return LANGUAGE_NAMES[code] ?? code;
}

// gankit's page i18n runtime, inlined by gankit.i18n.page_script() right after `const I18N = {...}`.
// t("key", {name: value}) is the text of a key in the current language (I18N.lang), "{name}" filled in;
// translate(lang) switches the language and rewrites every element that names its text by key.
function t(key, vars) {
  const cat = I18N.catalogues[I18N.lang] || I18N.catalogues.en;
  let s = key in cat ? cat[key] : key;
  for (const [k, v] of Object.entries(vars || {})) s = s.split("{" + k + "}").join(String(v));
  return s;
}
function translate(lang, root) {
  if (lang in I18N.catalogues) I18N.lang = lang;
  const r = root || document;
  document.documentElement.lang = I18N.lang === "zh" ? "zh-CN" : I18N.lang;
  for (const el of r.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of r.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of r.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of r.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
  for (const el of r.querySelectorAll("[data-i18n-alt]")) el.alt = t(el.dataset.i18nAlt);
  return I18N.lang;
}

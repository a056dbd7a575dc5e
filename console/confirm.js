// The confirmation dialog every action goes through. confirmAction resolves with the reason
// (or '' when none is asked) once the operator confirms and `run` succeeds, or null on Back.
const dialog = () => document.getElementById('confirm');

export function confirmAction({ title, text, askReason = false, confirmLabel = 'Confirm', run }) {
  const box = dialog();
  const reasonField = document.getElementById('reason-field');
  const reason = document.getElementById('reason');
  const error = document.getElementById('confirm-error');
  const ok = document.getElementById('confirm-ok');
  const back = document.getElementById('confirm-back');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  reasonField.hidden = !askReason;
  reason.value = '';
  error.textContent = '';
  ok.textContent = confirmLabel;
  ok.disabled = false;
  box.showModal();
  (askReason ? reason : ok).focus();

  return new Promise((resolve) => {
    const finish = (value) => {
      ok.removeEventListener('click', onOk);
      back.removeEventListener('click', onBack);
      box.removeEventListener('cancel', onBack);
      box.close();
      resolve(value);
    };
    const onBack = (event) => {
      event.preventDefault();
      finish(null);
    };
    const onOk = async () => {
      const given = reason.value.trim();
      if (askReason && given === '') {
        error.textContent = 'Say why (the reason is recorded with the order).';
        reason.focus();
        return;
      }
      ok.disabled = true;
      try {
        const result = await run(given);
        finish({ reason: given, result });
      } catch (e) {
        error.textContent = e.message;
        ok.disabled = false;
      }
    };
    ok.addEventListener('click', onOk);
    back.addEventListener('click', onBack);
    box.addEventListener('cancel', onBack);
  });
}

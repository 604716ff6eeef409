// The demo shop's own page script (served as a file: our pages allow no inline scripts).
// The shop's own (tiny) basket.
(function () {
  var count = 0;
  document.getElementById('add').addEventListener('click', function () {
    var n = Math.max(1, Math.min(10, parseInt(document.getElementById('qty').value, 10) || 1));
    count += n;
    document.getElementById('basket-count').textContent = count;
    document.getElementById('added').textContent = n + ' × Enamel Camp Kettle added to your basket.';
  });
})();

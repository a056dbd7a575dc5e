-- The clock: pinned inside a transaction, advanced by tests, back to the wall clock on unpin.
BEGIN;
SELECT plan(6);

SELECT ok(orderflow.clock_now() BETWEEN clock_timestamp() - interval '1 minute' AND clock_timestamp() + interval '1 minute',
          'unpinned, clock_now follows the wall clock');
SELECT is(orderflow.pin_clock('2030-01-01 00:00:00+00'), '2030-01-01 00:00:00+00'::timestamptz,
          'pin_clock returns the pinned time');
SELECT is(orderflow.clock_now(), '2030-01-01 00:00:00+00'::timestamptz, 'clock_now returns the pinned time');
SELECT is(orderflow.advance_clock(interval '90 seconds'), '2030-01-01 00:01:30+00'::timestamptz,
          'advance_clock moves the pinned time forward');
SELECT lives_ok($$SELECT orderflow.unpin_clock()$$, 'unpin_clock works');
SELECT ok(orderflow.clock_now() < '2030-01-01'::timestamptz, 'after unpin the wall clock is back');

SELECT * FROM finish();
ROLLBACK;

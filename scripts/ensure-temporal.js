console.log('ensure-temporal placeholder')
